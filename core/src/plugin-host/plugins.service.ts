import type { ServiceSchema } from 'moleculer';
import type { ServiceDeps } from '../services.ts';

// Placeholder so the service list resolves; replaced by the real service.
export default function pluginsService(_deps: ServiceDeps): ServiceSchema {
  return { name: 'plugins' };
}
