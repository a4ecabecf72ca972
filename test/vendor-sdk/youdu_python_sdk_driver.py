# -*- coding: utf-8 -*-
"""
Qiao's driver for the vendor's own Python SDK (youduim/youdu-sdk-python), imported unchanged from a
checkout given on the command line. It calls the SDK's AppClient against a running Qiao and prints one
line per call: "OK name detail" or "FAIL name: message". Qiao's test (core/src/openapi/vendor-sdk.test.ts)
checks the lines and Qiao's state. This file is ours; no SDK code is copied here.

Debian packages pycryptodome as the module "Cryptodome"; the SDK imports "Crypto". The aliases below make
the same library importable under the SDK's name without touching the SDK.

args: sdk_dir host buin app_id aes_key to_user work_dir
"""
import os
import sys

sdk_dir, host, buin, app_id, aes_key, to_user, work_dir = sys.argv[1:8]

try:
    import Crypto  # noqa: F401  (an installed PyCrypto/pycryptodome is used as is)
except ImportError:
    import Cryptodome
    import Cryptodome.Cipher
    import Cryptodome.Cipher.AES
    import Cryptodome.Random
    sys.modules['Crypto'] = Cryptodome
    sys.modules['Crypto.Cipher'] = Cryptodome.Cipher
    sys.modules['Crypto.Cipher.AES'] = Cryptodome.Cipher.AES
    sys.modules['Crypto.Random'] = Cryptodome.Random

sys.path.insert(0, sdk_dir)
from entapp.client import AppClient  # noqa: E402
from entapp.message import Message, TextBody, FileBody, MpnewsBody, MpnewsBodyCell, ExlinkBody, ExlinkBodyCell  # noqa: E402
import entapp.client.client as _sdk_client  # noqa: E402
import json  # noqa: E402

# The SDK's json_loads_utf8 passes encoding= to json.loads, which Python 3.9 removed; on such Pythons the
# SDK cannot read any answer. Rebind the name the SDK's client module uses to the same call without it.
if sys.version_info >= (3, 9):
    _sdk_client.json_loads_utf8 = lambda s: json.loads(s)

failures = 0


def step(name, fn):
    global failures
    try:
        print('OK %s %s' % (name, fn()))
    except Exception as e:  # report and go on: the test wants the whole list
        failures += 1
        print('FAIL %s: %r' % (name, e))
    sys.stdout.flush()


client = AppClient(int(buin), app_id, aes_key, host)
payload = (u'Python SDK 上传 — 0123456789\n' * 40).encode('utf-8')
src = os.path.join(work_dir, 'py-upload.txt')
with open(src, 'wb') as f:
    f.write(payload)
state = {}


def upload():
    state['media'] = client.upload_file('file', 'py-upload.txt', src)
    return state['media']


def download():
    out = os.path.join(work_dir, 'downloaded')
    os.makedirs(out, exist_ok=True)
    name, size, content = client.download_file(state['media'], out)
    if content != payload:
        raise Exception('downloaded bytes differ')
    return '%s %d' % (name, size)


def search():
    name, size = client.search_file(state['media'])
    return '%s %d' % (name, size)


step('AppClient.send_msg(text)', lambda: client.send_msg(Message(to_user, 'text', TextBody(u'Python SDK 文本'))) or 'sent')
step('AppClient.upload_file', upload)
step('AppClient.search_file', search)
step('AppClient.download_file', download)
step('AppClient.send_msg(file)', lambda: client.send_msg(Message(to_user, 'file', FileBody(state['media']))) or 'sent')
step('AppClient.send_msg(mpnews)', lambda: client.send_msg(Message(to_user, 'mpnews', MpnewsBody([MpnewsBodyCell(u'图文标题', state['media'], u'摘要', u'正文')]))) or 'sent')
step('AppClient.send_msg(exlink)', lambda: client.send_msg(Message(to_user, 'exlink', ExlinkBody([ExlinkBodyCell(u'外链', 'https://example.com/x', u'摘要', state['media'])]))) or 'sent')
print('DONE failures=%d' % failures)
sys.exit(0 if failures == 0 else 1)
