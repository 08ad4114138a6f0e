"""Shared by the Python tests: PASS/FAIL lines with details, and the closing summary."""
import sys

_counts = {'passed': 0, 'failed': 0}


def check(cond, what, detail=''):
    """Prints PASS or FAIL for `what`; on failure also the detail (output, values)."""
    _counts['passed' if cond else 'failed'] += 1
    print(('PASS ' if cond else 'FAIL ') + what)
    if not cond and detail:
        print('    ' + str(detail).strip().replace('\n', '\n    ')[:4000])
    sys.stdout.flush()


def summary():
    """Prints 'N passed, M failed' and returns the exit code (1 if anything failed)."""
    print(f"{_counts['passed']} passed, {_counts['failed']} failed")
    return 1 if _counts['failed'] else 0


def wait_for(cond, timeout=120, proc=None, poll=0.01):
    """Waits for a state (a file written, a step reached): polls cond() until it is true
    (returns True), the deadline passes or proc ends (False). Tests wait for states, never
    for a guessed time: a faster or slower machine must not change what they see."""
    import time
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if cond():
                return True
        except (OSError, ValueError, KeyError, IndexError):
            pass
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(poll)
    return False


def have_plots(clvae):
    """Whether this clvae was built with cairo (`clvae --version` says)."""
    import subprocess
    out = subprocess.run([clvae, '--version'], capture_output=True, text=True).stdout
    return 'plots (cairo): yes' in out


def no_opencl(clvae):
    """Whether clvae sees no OpenCL platform at all (the tests that need one then skip)."""
    import subprocess
    r = subprocess.run([clvae, 'devices'], capture_output=True, text=True)
    return r.returncode == 2 and 'no OpenCL platform' in r.stdout + r.stderr


def serve_test(clvae, main):
    """The entry of the clvae serve tests: exit 77 (skip) without serve (a build without
    libmicrohttpd) or without an OpenCL platform, else main(tmp) in a temporary directory,
    then the summary's exit code."""
    import subprocess
    import sys
    import tempfile
    if subprocess.run([clvae, 'serve', '--help'], capture_output=True, text=True).returncode != 0:
        print('SKIP: clvae was built without libmicrohttpd (clvae serve)')
        sys.exit(77)
    if no_opencl(clvae):
        print('SKIP: no OpenCL platform')
        sys.exit(77)
    with tempfile.TemporaryDirectory() as tmp:
        main(tmp)
    sys.exit(summary())


def browser_missing(tfjs_dir, packages):
    """Why a Chromium test cannot run ('' if it can): node, Chromium ($CHROMIUM or
    /usr/bin/chromium) and the npm packages under tfjs_dir/node_modules."""
    import os
    import shutil
    missing = [p for p in packages if not os.path.isdir(os.path.join(tfjs_dir, 'node_modules', p))]
    chromium = os.environ.get('CHROMIUM', '/usr/bin/chromium')
    if not shutil.which('node'):
        return 'node is not installed'
    if not os.access(chromium, os.X_OK):
        return f'no Chromium at {chromium} (apt install chromium, or set CHROMIUM)'
    if missing:
        return f"npm packages missing in {tfjs_dir} ({', '.join(missing)}): npm ci --ignore-scripts there"
    return ''


ITEM_KINDS = {1: 'dense', 2: 'conv', 3: 'deconv', 4: 'reshape'}


def item_text(f):
    """An item record (8 ints) as the command line writes it."""
    kind, units, size, stride, valid, h, w, c = f
    if kind == 1:
        return f'dense:{units}'
    if kind in (2, 3):
        return f"{ITEM_KINDS[kind]}:{units}:{size}:{stride}:{'valid' if valid else 'same'}"
    return f'reshape:{h}:{w}:{c}'


def read_checkpoint(path):
    """A clvae checkpoint (format 2 or 3, see src/io/checkpoint.c) read independently: the
    header fields, the layer records, format 3's extension records (items, data paths) and
    the float arrays. Raises ValueError if it is not one."""
    import struct
    import zlib
    b = open(path, 'rb').read()
    version = struct.unpack('<I', b[8:12])[0] if len(b) >= 12 else 0
    if b[:8] != b'CLVAECKP' or version not in (2, 3):
        raise ValueError(f'{path}: not a format-2 or -3 clvae checkpoint')
    hdr, = struct.unpack('<I', b[12:16])
    h, w, c, depth, latent, loss, batch = struct.unpack('<7i', b[16:44])
    step, = struct.unpack('<q', b[68:76])
    epoch, epoch_step, limit = struct.unpack('<3i', b[76:88])
    n, = struct.unpack('<Q', b[104:112])
    hidden = list(struct.unpack('<8i', b[112:144]))[:depth]
    nlayers, = struct.unpack('<I', b[144:148])
    layers = [struct.unpack('<4I2Q', b[152 + 32 * i:184 + 32 * i]) for i in range(nlayers)]
    if len(b) != hdr + 12 * n + 4 or struct.unpack('<I', b[-4:])[0] != zlib.crc32(b[:-4]):
        raise ValueError(f'{path}: size or CRC does not match')
    ext, at = {}, 152 + 32 * nlayers
    while version == 3:
        tag, length = struct.unpack('<II', b[at:at + 8])
        if tag == 0:
            break
        ext[tag] = b[at + 8:at + 8 + length]
        at += 8 + length
    items = {side: [item_text(struct.unpack('<8i', v[i:i + 32])) for i in range(0, len(v), 32)]
             for side, v in (('encoder', ext.get(1, b'')), ('decoder', ext.get(2, b'')))}
    return {'version': version, 'height': h, 'width': w, 'channels': c, 'depth': depth, 'hidden': hidden,
            'latent': latent, 'loss': loss, 'batch': batch, 'step': step, 'epoch': epoch, 'epoch_step': epoch_step,
            'limit': limit, 'n': n, 'header': hdr, 'state': b[hdr:-4],  # parameters, Adam m and v
            'params': struct.unpack('<%df' % n, b[hdr:hdr + 4 * n]),
            # (kind 0 dense / 1 sample / 2 output / 3 conv / 4 deconv, act, in, out, kernel offset, bias offset)
            'layers': layers, 'encoder': items['encoder'], 'decoder': items['decoder'],
            'data': ext.get(3, b'').decode(), 'data_abs': ext.get(4, b'').decode(),
            'init': {1: 'glorot', 2: 'torch'}.get(struct.unpack('<I', ext[5])[0] if 5 in ext else 1),
            'beta': struct.unpack('<f', ext[6])[0] if 6 in ext else 1.0, 'classes': class_record(ext.get(7))}


def class_record(v):
    """A conditional model's classes record (tag 7): [names] (K of them, '' unnamed), or None."""
    import struct
    if v is None:
        return None
    k, = struct.unpack('<I', v[:4])
    names, at = [], 4
    for _ in range(k):
        n, = struct.unpack('<I', v[at:at + 4])
        names.append(v[at + 4:at + 4 + n].decode('utf-8', 'surrogateescape'))
        at += 4 + n
    return names


def write_png(path, width, height, pixels, color_type=0, bit_depth=8, palette=None, interlace=False):
    """A PNG written here with zlib alone, independent of libpng. pixels: rows of samples
    (per row width × channels values, or palette indices), channels from color_type (0 grey,
    2 RGB, 3 palette, 4 grey+alpha, 6 RGBA). Bit depths 1/2/4 pack grey or palette samples;
    16 writes big-endian pairs. interlace=True writes Adam7 (7 passes)."""
    import struct
    import zlib
    ch = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]

    def pack_row(samples):
        if bit_depth == 16:
            return b''.join(struct.pack('>H', v) for v in samples)
        if bit_depth == 8:
            return bytes(samples)
        out, acc, nbits = bytearray(), 0, 0
        for v in samples:
            acc, nbits = (acc << bit_depth) | v, nbits + bit_depth
            if nbits == 8:
                out.append(acc)
                acc, nbits = 0, 0
        if nbits:
            out.append(acc << (8 - nbits))
        return bytes(out)

    def rows_of(xs, ys):
        return b''.join(b'\0' + pack_row([s for x in xs for s in pixels[y][x * ch:(x + 1) * ch]]) for y in ys)

    if interlace:
        passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
        raw = b''
        for x0, y0, dx, dy in passes:
            xs, ys = list(range(x0, width, dx)), list(range(y0, height, dy))
            if xs and ys:
                raw += rows_of(xs, ys)
    else:
        raw = rows_of(list(range(width)), list(range(height)))

    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))
    png = b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, bit_depth, color_type, 0, 0,
                                                            1 if interlace else 0))
    if palette:
        png += chunk(b'PLTE', bytes(v for rgb in palette for v in rgb))
    png += chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b'')
    with open(path, 'wb') as f:
        f.write(png)


def read_png(path):
    """(width, height, channels, rows of bytes) of an 8-bit, non-interlaced grey or RGB PNG
    (what clvae writes), decoded with zlib alone."""
    import struct
    import zlib
    b = open(path, 'rb').read()
    pos, data, w, h, ch = 8, b'', 0, 0, 1
    while pos < len(b):
        n, typ = struct.unpack('>I4s', b[pos:pos + 8])
        body = b[pos + 8:pos + 8 + n]
        if typ == b'IHDR':
            w, h, depth, ctype = struct.unpack('>IIBB', body[:10])
            if depth != 8 or ctype not in (0, 2):
                raise ValueError(f'{path}: not an 8-bit grey or RGB PNG')
            ch = 3 if ctype == 2 else 1
        elif typ == b'IDAT':
            data += body
        pos += 12 + n
    raw, rows, stride = zlib.decompress(data), [], w * ch
    prev = bytearray(stride)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - ch] if x >= ch else 0
            c = prev[x - ch] if x >= ch else 0
            up = prev[x]
            if f == 1:
                pred = a
            elif f == 2:
                pred = up
            elif f == 3:
                pred = (a + up) // 2
            elif f == 4:
                pa, pb, pc = abs(up - c), abs(a - c), abs(a + up - 2 * c)
                pred = a if pa <= pb and pa <= pc else up if pb <= pc else c
            else:
                pred = 0
            line[x] = (line[x] + pred) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, ch, rows
