"""A local PEP 691 package index for strata's tests: builds wheels with
zipfile from a JSON spec and serves them on loopback, with the JSON simple
API, PEP 658/714 `.metadata` files, PEP 700 sizes and PEP 592 yanking.

    python3 pypi_index.py SPEC.json ROOT PORT [USER:PASSWORD]

With USER:PASSWORD, every request needs that HTTP basic login (401 without).

SPEC is a list of wheels:
  {"name": "demo", "version": "1.0", "tag": "py3-none-any",
   "requires_dist": ["dep>=1; extra == 'x'"], "provides_extra": ["x"],
   "requires_python": ">=3.8", "yanked": false, "metadata_file": true,
   "files": {"demo/__init__.py": "text"}, "scripts": {"demo-cli": "demo:main"},
   "data_scripts": {"tool": "#!python\\nprint(1)\\n"},
   "host_files": {"demo/_ext.so": "/usr/lib/x86_64-linux-gnu/libz.so.1"},
   "hostile": {...}}            # see build_wheel: lies and bad entries
and sdists: {"name": ..., "version": ..., "sdist": true}.
"""

import base64
import hashlib
import http.server
import json
import os
import sys
import zipfile


def record_hash(data):
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def normalize(name):
    out = []
    for c in name.lower():
        out.append("-" if c in "_." else c)
    return "".join(out)


def build_wheel(spec, root):
    name, version, tag = spec["name"], spec["version"], spec.get("tag", "py3-none-any")
    dist = name.replace("-", "_")
    filename = f"{dist}-{version}-{tag}.whl"
    info = f"{dist}-{version}.dist-info"
    hostile = spec.get("hostile", {})
    metadata = [
        "Metadata-Version: 2.1",
        f"Name: {name}",
        f"Version: {version}",
    ]
    if spec.get("requires_python"):
        metadata.append(f"Requires-Python: {spec['requires_python']}")
    for extra in spec.get("provides_extra", []):
        metadata.append(f"Provides-Extra: {extra}")
    for req in spec.get("requires_dist", []):
        metadata.append(f"Requires-Dist: {req}")
    metadata = ("\n".join(metadata) + "\n\nA test package.\n").encode()
    members = []
    for path, text in spec.get("files", {}).items():
        members.append((path, text.encode(), 0o644))
    for path, host in spec.get("host_files", {}).items():
        members.append((path, open(host, "rb").read(), 0o755))
    for path, text in spec.get("data_scripts", {}).items():
        members.append((f"{dist}-{version}.data/scripts/{path}", text.encode(), 0o755))
    members.append((f"{info}/METADATA", metadata, 0o644))
    members.append(
        (f"{info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: strata-tests\nRoot-Is-Purelib: true\nTag: " + tag.encode() + b"\n", 0o644)
    )
    if spec.get("scripts"):
        text = "[console_scripts]\n" + "".join(f"{k} = {v}\n" for k, v in spec["scripts"].items())
        members.append((f"{info}/entry_points.txt", text.encode(), 0o644))
    for path, text in hostile.get("extra_members", {}).items():
        members.append((path, text.encode(), 0o644))
    record = "".join(f"{p},{record_hash(d)},{len(d)}\n" for p, d, _ in members)
    if "lie_about" in hostile:
        # RECORD names a hash that is not the member's.
        record = record.replace(
            record_hash(dict((p, d) for p, d, _ in members)[hostile["lie_about"]]),
            record_hash(b"something else"),
        )
    record += f"{info}/RECORD,,\n"
    members.append((f"{info}/RECORD", record.encode(), 0o644))
    path = os.path.join(root, "files", filename)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for member, data, mode in members:
            zi = zipfile.ZipInfo(member, date_time=(2020, 1, 1, 0, 0, 0))
            zi.external_attr = (0o100000 | mode) << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, data)
        if "symlink" in hostile:
            zi = zipfile.ZipInfo(hostile["symlink"], date_time=(2020, 1, 1, 0, 0, 0))
            zi.external_attr = (0o120777) << 16
            z.writestr(zi, b"/etc/passwd")
    if "bomb" in hostile:
        # A member whose local and central sizes claim less than its data.
        data = open(path, "rb").read()
        target = hostile["bomb"].encode()
        with zipfile.ZipFile(path) as z:
            info_ = z.getinfo(hostile["bomb"])
        real = info_.file_size
        data = data.replace(real.to_bytes(4, "little") + len(target).to_bytes(2, "little"), (1).to_bytes(4, "little") + len(target).to_bytes(2, "little"))
        open(path, "wb").write(data)
    with open(path + ".metadata", "wb") as f:
        f.write(metadata)
    return filename, metadata


def build(spec_path, root):
    os.makedirs(os.path.join(root, "files"), exist_ok=True)
    projects = {}
    for spec in json.load(open(spec_path)):
        project = projects.setdefault(normalize(spec["name"]), [])
        if spec.get("sdist"):
            filename = f"{spec['name']}-{spec['version']}.tar.gz"
            data = b"not really an sdist"
            open(os.path.join(root, "files", filename), "wb").write(data)
            project.append({"filename": filename, "url": f"../../files/{filename}", "hashes": {"sha256": hashlib.sha256(data).hexdigest()}, "size": len(data)})
            continue
        filename, metadata = build_wheel(spec, root)
        data = open(os.path.join(root, "files", filename), "rb").read()
        entry = {
            "filename": filename,
            "url": f"../../files/{filename}",
            "hashes": {"sha256": hashlib.sha256(data).hexdigest()},
        }
        # PEP 700 made `size` optional: some indexes leave it out.
        if not spec.get("no_size"):
            entry["size"] = len(data)
        if spec.get("requires_python"):
            entry["requires-python"] = spec["requires_python"]
        if spec.get("yanked"):
            entry["yanked"] = spec["yanked"]
        if spec.get("metadata_file", True):
            entry["core-metadata"] = {"sha256": hashlib.sha256(metadata).hexdigest()}
        project.append(entry)
    for name, files in projects.items():
        page = {"meta": {"api-version": "1.1"}, "name": name, "files": files, "versions": []}
        os.makedirs(os.path.join(root, "simple", name), exist_ok=True)
        with open(os.path.join(root, "simple", name, "index.json"), "w") as f:
            json.dump(page, f)


class Handler(http.server.SimpleHTTPRequestHandler):
    login = None

    def do_GET(self):
        if self.login is not None:
            expected = "Basic " + base64.b64encode(self.login.encode()).decode()
            if self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="index"')
                self.end_headers()
                return
        path = self.path.split("?")[0]
        if path.startswith("/simple/") and path.endswith("/"):
            file = os.path.join(self.directory, path.lstrip("/"), "index.json")
            if not os.path.exists(file):
                self.send_error(404)
                return
            data = open(file, "rb").read()
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.pypi.simple.v1+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            with open(os.path.join(self.directory, "requests.log"), "a") as log:
                log.write(path + "\n")
            return
        with open(os.path.join(self.directory, "requests.log"), "a") as log:
            log.write(path + "\n")
        super().do_GET()

    def log_message(self, *args):
        pass


def main():
    spec, root, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    Handler.login = sys.argv[4] if len(sys.argv) > 4 else None
    build(spec, root)
    handler = lambda *a, **k: Handler(*a, directory=root, **k)
    http.server.ThreadingHTTPServer(("127.0.0.1", port), handler).serve_forever()


if __name__ == "__main__":
    main()
