export { identify, YouduClient, YouduError, type AppCredentials, type Dept, type IdentifiedUser, type Link, type Recipients, type SysMsgItem, type User, type UserInfo } from './client.ts';
export { serveCallbacks, type CallbackAnswer, type CallbackApp, type CallbackServer } from './callback.ts';
export { keyOf, open, seal, sign } from './crypto.ts';
export { credentialsFromEnv, isMain } from './env.ts';
