"""https: certificates are always verified; the only way to trust another CA is
an explicit bundle (-o ca_file=PATH). Each test puts a TLS terminator of its own
in front of the fake, with a certificate made for it by openssl."""
import errno
import os
import socket
import ssl
import subprocess
import threading

import pytest

from conftest import EXECFS, Mount, fake_latest_csv, kind_of, wait_for


def read(path):
    with open(path, "rb") as f:
        return f.read()


def make_cert(tmp_path, name, san):
    key, cert = tmp_path / f"{name}.key", tmp_path / f"{name}.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={name}",
                    "-addext", f"subjectAltName={san}"], check=True, capture_output=True)
    return str(cert), str(key)


class TlsFront:
    """Accepts TLS on 127.0.0.1 and forwards the plain bytes to the fake."""

    def __init__(self, cert, key, target_port):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.target = target_port
        self.handshakes_failed = 0
        self.forwarded = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.done = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.done:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            tls = self.ctx.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            self.handshakes_failed += 1
            conn.close()
            return
        self.forwarded += 1
        plain = socket.create_connection(("127.0.0.1", self.target))

        def pump(src, dst):
            try:
                while True:
                    data = src.recv(65536)
                    if not data:
                        break
                    dst.sendall(data)
            except OSError:
                pass
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        threading.Thread(target=pump, args=(plain, tls), daemon=True).start()
        pump(tls, plain)

    def close(self):
        self.done = True
        self.sock.close()


@pytest.fixture
def front(fake, tmp_path):
    cert, key = make_cert(tmp_path, "local", "IP:127.0.0.1")
    f = TlsFront(cert, key, fake.port)
    f.cert = cert
    yield f
    f.close()


def https_mount(fake, tmp_path, port, options=()):
    return Mount(fake, tmp_path, source=f"{kind_of(fake)}:https://127.0.0.1:{port}",
                 options=list(options)).start()


def test_an_unknown_ca_is_refused_before_any_request(fake, front, tmp_path):
    m = https_mount(fake, tmp_path, front.port)
    try:
        with pytest.raises(OSError) as e:
            read(m.p("queries", "1001", "latest.csv"))
        assert e.value.errno == errno.EIO
        assert "certificate" in m.log().lower()
        # the front's thread counts the refused handshake a moment after the
        # client gave up on it
        wait_for(lambda: front.handshakes_failed >= 1)
        assert front.forwarded == 0
        assert fake.log() == []  # not one request, so the key never left
    finally:
        m.stop()


def test_an_explicit_ca_file_is_trusted(fake, front, tmp_path):
    m = https_mount(fake, tmp_path, front.port, [f"ca_file={front.cert}"])
    try:
        assert read(m.p("queries", "1001", "latest.csv")) == fake_latest_csv(fake, 1001)
        assert front.forwarded >= 1
    finally:
        m.stop()


def test_a_certificate_for_another_host_is_refused_even_with_its_ca(fake, tmp_path):
    cert, key = make_cert(tmp_path, "other.example", "DNS:other.example")
    f = TlsFront(cert, key, fake.port)
    m = https_mount(fake, tmp_path, f.port, [f"ca_file={cert}"])
    try:
        with pytest.raises(OSError) as e:
            read(m.p("queries", "1001", "latest.csv"))
        assert e.value.errno == errno.EIO
        assert fake.log() == []
    finally:
        m.stop()
        f.close()


@pytest.mark.parametrize("option", ["insecure", "ssl_verify=0", "verify_peer=0", "no_verify"])
def test_there_is_no_option_to_skip_verification(option, tmp_path):
    os.makedirs(tmp_path / "m")
    r = subprocess.run([EXECFS, "dune:https://127.0.0.1:9", str(tmp_path / "m"), "-f",
                        "-o", option], capture_output=True, text=True, timeout=20,
                       env={**os.environ, "EXECFS_API_KEY": "k"})
    assert r.returncode != 0 and option.split("=")[0] in r.stderr
