"""
tests/integration/tlscerts.py - a throwaway PKI for the TLS tests, made with the `openssl`
command line in a temporary directory: a test CA, server certificates for 127.0.0.1 and
localhost, client certificates (good, expired, and one from a CA the server does not know).
EC P-256 keys: quick to make and to handshake with. Every command has a timeout.
"""

import base64
import hashlib
import os
import subprocess

OPENSSL_TIMEOUT = 20


def _run(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, timeout=OPENSSL_TIMEOUT,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


CA_CNF = """[ ca ]
default_ca = ca_default
[ ca_default ]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = policy_any
copy_extensions = copy
[ policy_any ]
commonName = supplied
"""


class PKI:
    """Certificates under `root` (a pathlib.Path); paths as str attributes."""

    def __init__(self, root):
        self.root = str(root)
        os.makedirs(self.root, exist_ok=True)
        self.ca_cert, self.ca_key = self._ca("ca", "Herald Test CA")
        self.rogue_ca_cert, self.rogue_ca_key = self._ca("rogue-ca", "Rogue CA")
        self.server_cert, self.server_key = self.issue("server", "localhost", server=True)
        self.server2_cert, self.server2_key = self.issue("server2", "localhost-reloaded",
                                                         server=True)

    def path(self, name):
        return os.path.join(self.root, name)

    def _key(self, name):
        _run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", name + ".key", cwd=self.root)
        return self.path(name + ".key")

    def _ca(self, name, cn):
        self._key(name)
        _run("req", "-x509", "-new", "-key", name + ".key", "-out", name + ".pem",
             "-days", "30", "-subj", "/CN=" + cn,
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=self.root)
        return self.path(name + ".pem"), self.path(name + ".key")

    def issue(self, name, cn, server=False, ca="ca", expired=False):
        """A certificate for `cn` signed by `ca` ("ca" or "rogue-ca"); expired ones lie
        wholly in the past."""
        self._key(name)
        ext = ["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"] if server else []
        _run("req", "-new", "-key", name + ".key", "-out", name + ".csr", "-subj",
             "/CN=" + cn, *ext, cwd=self.root)
        if expired:
            self._ca_sign(name, ca)
        else:
            _run("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey",
                 ca + ".key", "-CAcreateserial", "-out", name + ".pem", "-days", "30",
                 "-copy_extensions", "copy", cwd=self.root)
        return self.path(name + ".pem"), self.path(name + ".key")

    def _ca_sign(self, name, ca):
        """`openssl ca` signs with explicit dates (x509 -req cannot backdate)."""
        with open(self.path("ca.cnf"), "w") as f:
            f.write(CA_CNF)
        open(self.path("index.txt"), "w").close()
        with open(self.path("serial"), "w") as f:
            f.write("1000\n")
        _run("ca", "-batch", "-config", "ca.cnf", "-cert", ca + ".pem", "-keyfile",
             ca + ".key", "-in", name + ".csr", "-out", name + ".pem", "-notext",
             "-startdate", "20200101000000Z", "-enddate", "20200201000000Z", cwd=self.root)

    def spki_sha256_b64(self, cert):
        """base64(SHA-256(SubjectPublicKeyInfo)): what Chromium's
        --ignore-certificate-errors-spki-list takes."""
        pub = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-pubkey"],
                             check=True, timeout=OPENSSL_TIMEOUT, capture_output=True).stdout
        der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub,
                             check=True, timeout=OPENSSL_TIMEOUT, capture_output=True).stdout
        return base64.b64encode(hashlib.sha256(der).digest()).decode()
