#!/usr/bin/python3
"""berth's torch runner: serves TorchScript modules (one per slot) over the runner protocol on fd 3,
or, given BERTH_RUNNER_LISTEN (tcp:HOST:PORT or unix:/path) and BERTH_RUNNER_TOKEN, on the first
connection there whose first frame is `hello` with that token (a runner in a container).

    python3 torch_worker.py

Frames: u32 LE frame length, u32 LE header length, a UTF-8 JSON header, then the tensors' raw
little-endian bytes in header order (see src/runtime/worker-protocol.ts). It sends `started` with
the protocol version first, then answers one request at a time (a `ping` with a `pong`); errors
travel as data, with the codes a runner may send (RUNNER_ERROR_CODES there). It exits when berth
closes fd 3, or sends a message it does not know.
A load that carries an archive (a runner that cannot see berth's files) is fetched by berth's
Node fetcher (dist/runtime/fetch-model-main.js, beside this runner in berth's images) into
BERTH_RUNNER_SCRATCH, and removed when the model is unloaded.
Only TorchScript is loaded (torch.jit.load: no pickle code runs).
"""
import hmac
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

import torch

DTYPES = {
    'FP32': torch.float32, 'FP64': torch.float64, 'FP16': torch.float16, 'BF16': torch.bfloat16,
    'INT8': torch.int8, 'INT16': torch.int16, 'INT32': torch.int32, 'INT64': torch.int64,
    'UINT8': torch.uint8, 'BOOL': torch.bool,
}
NAMES = {v: k for k, v in DTYPES.items()}

# RUNNER_PROTOCOL_VERSION in src/runtime/worker-protocol.ts: berth refuses any other.
PROTOCOL = 6

# A hello frame is small: a token of at most 256 characters (MAX_TOKEN_LENGTH there).
MAX_HELLO_BYTES = 1024
HELLO_TIMEOUT_S = 5


def accept_berth(listen, token, wait_s=None):
    """Listens at `listen` until a connection says hello with `token`; strangers are closed.

    `wait_s`: berth not there by then, the runner exits (3): it never waits for berth forever.
    """
    deadline = None if wait_s is None else time.monotonic() + wait_s
    if listen.startswith('unix:') and len(listen) > 5:
        path = listen[5:]
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if os.path.exists(path):
            os.remove(path)
        server.bind(path)
        bound = listen
    else:
        host, _, port = listen[4:].rpartition(':') if listen.startswith('tcp:') else ('', '', '')
        if not host or not port.isdigit():
            raise ValueError(listen)
        host = host.strip('[]')
        server = socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((host, int(port)))
        bound = f'tcp:{listen[4:].rpartition(":")[0]}:{server.getsockname()[1]}'
    server.listen(8)
    print(f'runner: listening on {bound}', flush=True)
    expected = token.encode()
    while True:
        if deadline is not None:
            server.settimeout(max(0.001, deadline - time.monotonic()))
        try:
            conn, _ = server.accept()
        except socket.timeout:
            sys.stderr.write(f'torch runner: berth did not connect within {wait_s * 1000:.0f} ms\n')
            sys.exit(3)
        conn.setblocking(True)
        try:
            conn.settimeout(HELLO_TIMEOUT_S)
            head = recv_exact(conn, 8)
            frame_length, header_length = struct.unpack('<II', head)
            if 4 <= frame_length <= MAX_HELLO_BYTES and header_length <= frame_length - 4:
                header = json.loads(recv_exact(conn, frame_length - 4)[:header_length].decode())
                given = header.get('token') if isinstance(header, dict) else None
                if header.get('type') == 'hello' and isinstance(given, str) and \
                        hmac.compare_digest(given.encode(), expected):
                    conn.settimeout(None)
                    server.close()
                    return SocketChannel(conn)
        except (OSError, ValueError, UnicodeDecodeError, AttributeError):
            pass
        conn.close()


class SocketChannel:
    """fd 3's read and write over a socket: every byte of a write sent, reads as they come."""

    def __init__(self, conn):
        self.conn = conn

    def read(self, n):
        try:
            return self.conn.recv(n)
        except OSError:
            return b''

    def write(self, data):
        self.conn.sendall(data)


def recv_exact(conn, n):
    data = b''
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise OSError('closed')
        data += chunk
    return data


def open_channel():
    listen = os.environ.get('BERTH_RUNNER_LISTEN')
    if listen is None:
        return os.fdopen(3, 'r+b', buffering=0)
    token = os.environ.get('BERTH_RUNNER_TOKEN', '')
    try:
        if not token:
            raise ValueError(listen)
        wait = os.environ.get('BERTH_RUNNER_WAIT_MS', '')
        wait_s = int(wait) / 1000 if wait.isdigit() and int(wait) > 0 else None
        return accept_berth(listen, token, wait_s)
    except ValueError:
        sys.stderr.write('torch runner: BERTH_RUNNER_LISTEN must be tcp:HOST:PORT or unix:/path, '
                         'with BERTH_RUNNER_TOKEN\n')
        sys.exit(2)


channel = open_channel()
# One module per slot berth names (torch models keep a process of their own, so one slot in use).
models = {}
# The folder fetched for each slot's model, removed with it.
fetched = {}
FETCH_TIMEOUT_S = 3600
FETCHER = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'dist', 'runtime',
                       'fetch-model-main.js')


class LoadFailed(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def fetch_model(archive):
    """Fetches and unpacks the archive as the Node runner does: (files' folder, folder to delete)."""
    scratch = os.environ.get('BERTH_RUNNER_SCRATCH') or tempfile.gettempdir()
    order = json.dumps({'archive': archive, 'scratch': scratch}).encode()
    done = None
    try:
        # Bounded by berth's load timeout too; this one keeps a stuck fetcher from outliving it.
        done = subprocess.run(['node', FETCHER], input=order, capture_output=True, check=False,
                              timeout=FETCH_TIMEOUT_S)
        answer = json.loads(done.stdout.decode().strip().splitlines()[-1])
    except (OSError, ValueError, IndexError, subprocess.TimeoutExpired) as e:
        # The fetcher's last words (it never prints the URL), or why it could not run.
        said = done.stderr.decode(errors='replace').strip().splitlines()[-1:] if done else []
        reason = said[0] if said else str(e)
        raise LoadFailed('model_load_failed', f'the runner could not run its model fetcher: {reason}')
    if 'error' in answer:
        raise LoadFailed(answer['error']['code'], answer['error']['message'])
    return answer['root'], answer['dir']


def rebase(path, source, target):
    """`path` under berth's model folder `source`, as the same file under `target` (never outside)."""
    inside = os.path.relpath(os.path.normpath(path), os.path.normpath(source))
    if inside == '..' or inside.startswith('..' + os.sep) or os.path.isabs(inside):
        raise LoadFailed('model_load_failed', "the load names a file outside the model's folder")
    return os.path.normpath(os.path.join(target, inside))


def unload(slot):
    models.pop(slot, None)
    folder = fetched.pop(slot, None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def read_exact(n):
    chunks, left = [], n
    while left > 0:
        chunk = channel.read(left)
        if not chunk:
            sys.exit(0)
        chunks.append(chunk)
        left -= len(chunk)
    return b''.join(chunks)


def send(message, tensors=()):
    header = dict(message)
    payload = []
    if tensors:
        header['outputs'] = []
        for name, t in tensors:
            t = t.detach().contiguous().cpu()
            if t.dtype not in NAMES:
                raise ValueError(f'output {name} has dtype {t.dtype}, which berth cannot carry')
            data = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() > 0 else b''
            header['outputs'].append({'name': name, 'datatype': NAMES[t.dtype],
                                      'shape': list(t.shape), 'byteLength': len(data)})
            payload.append(data)
    text = json.dumps(header).encode()
    body = b''.join(payload)
    channel.write(struct.pack('<II', 4 + len(text) + len(body), len(text)) + text + body)


def fail(request_id, code, message):
    send({'type': 'failed', 'id': request_id, 'error': {'code': code, 'message': message}})


def signature(module):
    try:
        args = module.forward.schema.arguments[1:]
    except Exception:
        return [{'name': 'input__0', 'datatype': 'ANY', 'shape': ['*']}]
    return [{'name': a.name, 'datatype': 'ANY', 'shape': ['*']} for a in args]


def outputs_of(result):
    if isinstance(result, torch.Tensor):
        return [('output__0', result)]
    if isinstance(result, (tuple, list)) and all(isinstance(r, torch.Tensor) for r in result):
        return [(f'output__{i}', r) for i, r in enumerate(result)]
    if isinstance(result, dict) and all(isinstance(r, torch.Tensor) for r in result.values()):
        return [(str(k), r) for k, r in result.items()]
    raise ValueError(f'the module returned {type(result).__name__}, not tensors')


def handle(header, payload):
    kind, request_id = header.get('type'), header.get('id')
    if kind == 'ping':
        return send({'type': 'pong', 'id': request_id})
    if kind == 'hello':
        return None  # the connection is berth's already
    slot = header.get('slot', 0)
    if kind == 'load':
        torch.set_num_threads(max(1, int(header.get('intraOpThreads', 1))))
        unload(slot)
        path, root, archive = header['modelPath'], None, header.get('archive')
        try:
            if archive is not None:
                root, fetched[slot] = fetch_model(archive)
                path = rebase(path, archive['root'], root)
            model = models[slot] = torch.jit.load(path, map_location='cpu').eval()
        except LoadFailed as e:
            unload(slot)
            return fail(request_id, e.code, str(e))
        except Exception as e:
            unload(slot)
            message = str(e)
            if root is not None:  # named relative to the model's folder, as berth names them
                message = message.replace(root + '/', '').replace(root, '.')
            return fail(request_id, 'model_load_failed', f'torch cannot load the module: {message}')
        inputs = signature(model)
        return send({'type': 'loaded', 'id': request_id, 'inputs': inputs,
                     'outputs': [{'name': 'output__0', 'datatype': 'ANY', 'shape': ['*']}]})
    if kind == 'unload':
        unload(slot)
        return send({'type': 'unloaded', 'id': request_id})
    if kind == 'infer':
        model = models.get(slot)
        if model is None:
            return fail(request_id, 'model_load_failed', f'no model is loaded in slot {slot}')
        args, offset = [], 0
        for spec in header.get('inputs', []):
            n = int(spec['byteLength'])
            dtype = DTYPES.get(spec['datatype'])
            if dtype is None:
                return fail(request_id, 'inference_failed', f"datatype {spec['datatype']} is not supported by torch here")
            raw = bytearray(payload[offset:offset + n])
            offset += n
            t = torch.frombuffer(raw, dtype=torch.uint8).view(dtype) if n else torch.empty(0, dtype=dtype)
            args.append(t.reshape(spec['shape']))
        try:
            with torch.no_grad():
                result = model(*args)
            tensors = outputs_of(result)
        except Exception as e:
            return fail(request_id, 'inference_failed', f'the model failed on these inputs: {e}')
        wanted = header.get('outputs')
        if wanted is not None:
            tensors = [(n, t) for n, t in tensors if n in wanted]
        return send({'type': 'result', 'id': request_id}, tensors)
    # berth and this runner disagree on the protocol: no answer would be right (as worker-main).
    sys.stderr.write(f'torch runner: unknown message {kind!r}\n')
    sys.exit(3)


send({'type': 'started', 'protocol': PROTOCOL, 'pid': os.getpid()})
while True:
    frame_length, header_length = struct.unpack('<II', read_exact(8))
    rest = read_exact(frame_length - 4)
    header = json.loads(rest[:header_length].decode())
    try:
        handle(header, rest[header_length:])
    except Exception:
        fail(header.get('id', 0), 'internal_error', traceback.format_exc(limit=3))
