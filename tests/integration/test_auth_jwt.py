"""
Token (JWT) logins (docs/auth.md "Token (JWT) logins", issue 5): HS256/RS256/ES256 accepted
only with their own key; expired, not-yet-valid, badly signed, alg none, other algorithms,
crit and key confusion refused; login vs sub; aud/iss/leeway; herald_sub / herald_send /
herald_tags / herald_vhosts; and the connection closed with an ERROR when the token expires.
"""

import subprocess
import time

import pytest

from authutil import (AsymKey, Closed, assert_connected, assert_denied, assert_receipt,  # noqa: F401
                      assert_refused, b64url, b64url_json, claims, flip_signature, hs256_token,
                      logins, send, subscribe, unsigned_token)

# CI variants (tests/integration/CMakeLists.txt; the full 1-shard run has every test): neither
# variant: a token is checked per connection, the same on any shard count or backend; the expiry
# tests are backend_sensitive (a loop timer closes the connection).
pytestmark = pytest.mark.herald_only

SECRET = "integration-test-secret-0123456789abcdef"	# >= 32 bytes (RFC 7518 3.2)


@pytest.fixture(scope="module")
def keydir(tmp_path_factory):
    return tmp_path_factory.mktemp("jwtkeys")


@pytest.fixture(scope="module")
def secret_file(keydir):
    p = keydir / "hs256.secret"
    p.write_text(SECRET + "\n")	# one trailing newline is dropped
    return str(p)


@pytest.fixture(scope="module")
def rsa_key(keydir):
    return AsymKey("rsa", str(keydir))


@pytest.fixture(scope="module")
def ec_key(keydir):
    return AsymKey("ec", str(keydir))


@pytest.fixture
def hs(herald_factory, secret_file):
    """A server taking HS256 tokens (plus the password user jack:jackpw)."""
    def start(*extra):
        return herald_factory("--jwt-hs256-secret-file", secret_file, "--user", "jack:jackpw",
                              *extra)
    return start


# ---- valid tokens ------------------------------------------------------------------------

def test_hs256_valid_token_logs_in_as_sub(hs, logins):
    srv = hs()
    tok = hs256_token(SECRET, claims("alice"))
    for login in (None, "", "alice"):
        r, f, _ = logins(srv, login, tok)
        assert_connected(f, "alice", "login=%r" % (login,))


def test_token_login_differs_from_sub_is_refused(hs, logins):
    srv = hs()
    r, f, _ = logins(srv, "bob", hs256_token(SECRET, claims("alice")))
    assert_refused(r, f, "login bob with alice's token")


def test_password_is_still_a_password_when_a_jwt_key_is_set(hs, logins):
    srv = hs()
    r, f, _ = logins(srv, "jack", "jackpw")
    assert_connected(f, "jack")
    r, f, _ = logins(srv, "jack", "wrong")
    assert_refused(r, f)


def test_rs256_valid_token(herald_factory, rsa_key, logins):
    srv = herald_factory("--jwt-rs256-key-file", rsa_key.pub_path)
    r, f, _ = logins(srv, None, rsa_key.token(claims("alice")))
    assert_connected(f, "alice")


def test_es256_valid_token(herald_factory, ec_key, logins):
    srv = herald_factory("--jwt-es256-key-file", ec_key.pub_path)
    r, f, _ = logins(srv, None, ec_key.token(claims("alice")))
    assert_connected(f, "alice")


def test_all_three_keys_configured_each_alg_verifies_with_its_own(herald_factory, secret_file,
                                                                  rsa_key, ec_key, logins):
    srv = herald_factory("--jwt-hs256-secret-file", secret_file,
                         "--jwt-rs256-key-file", rsa_key.pub_path,
                         "--jwt-es256-key-file", ec_key.pub_path)
    for name, tok in (("hs", hs256_token(SECRET, claims("u-hs"))),
                      ("rs", rsa_key.token(claims("u-rs"))),
                      ("es", ec_key.token(claims("u-es")))):
        r, f, _ = logins(srv, None, tok)
        assert_connected(f, "u-" + name, name)


# ---- refused tokens ----------------------------------------------------------------------

def _refused(srv, logins, tok, what):
    r, f, _ = logins(srv, None, tok)
    assert_refused(r, f, what)
    return f


def test_expired_token_is_refused(hs, logins):
    srv = hs()
    f = _refused(srv, logins, hs256_token(SECRET, claims("alice", ttl=-5)), "expired")
    assert b"expired" in f.body, f


def test_token_without_exp_is_refused(hs, logins):
    srv = hs()
    _refused(srv, logins, hs256_token(SECRET, {"sub": "alice"}), "no exp")


def test_token_without_sub_is_refused(hs, logins):
    srv = hs()
    _refused(srv, logins, hs256_token(SECRET, {"exp": int(time.time()) + 60}), "no sub")


def test_token_with_invalid_sub_is_refused(hs, logins):
    srv = hs()
    _refused(srv, logins, hs256_token(SECRET, claims("a/b#")), "sub with / and #")


def test_not_yet_valid_token_is_refused(hs, logins):
    srv = hs()
    _refused(srv, logins, hs256_token(SECRET, claims("alice", nbf=int(time.time()) + 120)),
             "nbf in the future")
    r, f, _ = logins(srv, None, hs256_token(SECRET, claims("alice", nbf=int(time.time()) - 5)))
    assert_connected(f, "alice", "nbf in the past")


def test_bad_signature_is_refused(hs, logins):
    srv = hs()
    good = hs256_token(SECRET, claims("alice"))
    _refused(srv, logins, flip_signature(good), "one signature bit flipped")
    _refused(srv, logins, hs256_token("another-secret-of-at-least-32-bytes!!", claims("alice")),
             "signed with another secret")
    # claims changed after signing
    head, _, sig = good.split(".")
    forged = head + "." + b64url_json(claims("admin")) + "." + sig
    _refused(srv, logins, forged, "claims swapped under a valid signature")
    _refused(srv, logins, good.rsplit(".", 1)[0] + ".", "signature removed")


def test_alg_none_is_refused(hs, logins):
    srv = hs()
    payload = claims("alice")
    valid_sig = hs256_token(SECRET, payload).split(".")[2]
    for alg, sig in (("none", ""), ("None", ""), ("NONE", ""), ("none", valid_sig)):
        _refused(srv, logins, unsigned_token(payload, alg=alg, sig=sig),
                 "alg %s, signature %r" % (alg, sig[:10]))


@pytest.mark.parametrize("alg,digest", [("HS384", "sha384"), ("HS512", "sha512")])
def test_other_hmac_algorithms_are_refused(hs, logins, alg, digest):
    import hashlib
    import hmac
    srv = hs()
    signing_input = b64url_json({"alg": alg, "typ": "JWT"}) + "." + b64url_json(claims("alice"))
    sig = hmac.new(SECRET.encode(), signing_input.encode(), getattr(hashlib, digest)).digest()
    _refused(srv, logins, signing_input + "." + b64url(sig), alg)


def test_alg_without_its_key_is_refused(herald_factory, secret_file, rsa_key, ec_key, logins):
    """Accepted algorithms are exactly those with a key."""
    srv = herald_factory("--jwt-hs256-secret-file", secret_file)
    _refused(srv, logins, rsa_key.token(claims("alice")), "RS256 with only an HS256 secret")
    _refused(srv, logins, ec_key.token(claims("alice")), "ES256 with only an HS256 secret")
    srv2 = herald_factory("--jwt-rs256-key-file", rsa_key.pub_path)
    _refused(srv2, logins, hs256_token(SECRET, claims("alice")), "HS256 with only an RSA key")
    _refused(srv2, logins, ec_key.token(claims("alice")), "ES256 with only an RSA key")


def test_rs256_signed_by_another_key_is_refused(herald_factory, rsa_key, keydir, logins):
    from authutil import AsymKey
    import os
    other_dir = str(keydir / "other")
    os.makedirs(other_dir, exist_ok=True)
    other = AsymKey("rsa", other_dir)
    srv = herald_factory("--jwt-rs256-key-file", rsa_key.pub_path)
    _refused(srv, logins, other.token(claims("alice")), "RS256 by another key")


def test_es256_der_signature_instead_of_raw_r_s_is_refused(herald_factory, ec_key, logins):
    from authutil import HAVE_CRYPTOGRAPHY
    srv = herald_factory("--jwt-es256-key-file", ec_key.pub_path)
    signing_input = b64url_json({"alg": "ES256", "typ": "JWT"}) + "." + b64url_json(
        claims("alice"))
    if HAVE_CRYPTOGRAPHY:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        der = ec_key._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    else:
        der = subprocess.run(["openssl", "dgst", "-sha256", "-sign", ec_key.priv_path],
                             input=signing_input.encode(), capture_output=True,
                             check=True, timeout=10).stdout
    _refused(srv, logins, signing_input + "." + b64url(der), "ES256 with a DER signature")


@pytest.mark.parametrize("with_hs_secret", [False, True])
def test_key_confusion_hs256_signed_with_the_rsa_public_key_is_refused(
        herald_factory, secret_file, rsa_key, logins, with_hs_secret):
    extra = ("--jwt-hs256-secret-file", secret_file) if with_hs_secret else ()
    srv = herald_factory("--jwt-rs256-key-file", rsa_key.pub_path, *extra)
    for key in (rsa_key.pub_pem, rsa_key.pub_pem.strip()):
        _refused(srv, logins, hs256_token(key, claims("alice")),
                 "HS256 with the RSA public PEM as the secret")
    # and the token is fine otherwise: RS256 with the same claims logs in
    r, f, _ = logins(srv, None, rsa_key.token(claims("alice")))
    assert_connected(f, "alice")


def test_header_with_crit_is_refused(hs, logins):
    srv = hs()
    tok = hs256_token(SECRET, claims("alice"),
                      header={"alg": "HS256", "typ": "JWT", "crit": ["exp"], "exp": 1})
    _refused(srv, logins, tok, "crit header")


def test_duplicate_claim_is_refused(hs, logins):
    srv = hs()
    head = b64url_json({"alg": "HS256", "typ": "JWT"})
    exp = int(time.time()) + 60
    payload = b64url(('{"sub":"alice","sub":"admin","exp":%d}' % exp).encode())
    import hashlib
    import hmac
    sig = hmac.new(SECRET.encode(), (head + "." + payload).encode(), hashlib.sha256).digest()
    _refused(srv, logins, head + "." + payload + "." + b64url(sig), "duplicate sub")


def test_padded_base64url_is_refused(hs, logins):
    srv = hs()
    tok = hs256_token(SECRET, claims("alice"))
    head, payload, sig = tok.split(".")
    if len(sig) % 4 == 0:
        pytest.skip("signature needs no padding")
    _refused(srv, logins, head + "." + payload + "." + sig + "=" * (-len(sig) % 4),
             "padded signature")


# ---- audience, issuer, leeway -------------------------------------------------------------

def test_audience_and_issuer_are_enforced_when_configured(hs, logins):
    srv = hs("--jwt-audience", "herald-test", "--jwt-issuer", "https://issuer.example")
    ok = dict(aud="herald-test", iss="https://issuer.example")
    r, f, _ = logins(srv, None, hs256_token(SECRET, claims("alice", **ok)))
    assert_connected(f, "alice", "aud and iss right")
    r, f, _ = logins(srv, None, hs256_token(SECRET, claims(
        "alice", aud=["other", "herald-test"], iss="https://issuer.example")))
    assert_connected(f, "alice", "aud array containing ours")
    for what, c in (("wrong aud", dict(ok, aud="other")),
                    ("aud missing", {"iss": ok["iss"]}),
                    ("aud array without ours", dict(ok, aud=["a", "b"])),
                    ("wrong iss", dict(ok, iss="https://evil.example")),
                    ("iss missing", {"aud": ok["aud"]})):
        _refused(srv, logins, hs256_token(SECRET, claims("alice", **c)), what)


def test_leeway_widens_exp_and_nbf(hs, logins):
    srv = hs("--jwt-leeway-s", "30")
    r, f, _ = logins(srv, None, hs256_token(SECRET, claims("alice", ttl=-10)))
    assert_connected(f, "alice", "expired 10 s ago with 30 s leeway")
    r, f, _ = logins(srv, None, hs256_token(SECRET, claims("alice", nbf=int(time.time()) + 10)))
    assert_connected(f, "alice", "nbf 10 s ahead with 30 s leeway")
    _refused(srv, logins, hs256_token(SECRET, claims("alice", ttl=-60)), "expired 60 s ago")


# ---- scope claims -----------------------------------------------------------------------

def test_token_without_scope_claims_gets_the_default_rules(hs, logins):
    srv = hs()
    tok = hs256_token(SECRET, claims("alice"))
    r, f, _ = logins(srv, None, tok)
    assert_connected(f, "alice")
    assert_receipt(subscribe(r, "/queue/alice", "a", "r1"), "r1")
    assert_receipt(subscribe(r, "/topic/anything", "b", "r2"), "r2")
    assert_denied(r, subscribe(r, "/queue/bob", "c", "r3"), "/queue/bob", "subscribe")


def test_herald_sub_replaces_the_rules_for_subscribe(hs, logins):
    srv = hs()
    tok = hs256_token(SECRET, claims("alice", herald_sub=["/topic/news.#", "/queue/{user}.inbox"]))
    r, f, _ = logins(srv, None, tok)
    assert_connected(f, "alice")
    assert_receipt(subscribe(r, "/topic/news.uk", "a", "r1"), "r1")
    assert_receipt(subscribe(r, "/queue/alice.inbox", "b", "r2"), "r2")
    # /queue/alice is allowed by the default rules, but the claim replaces them
    assert_denied(r, subscribe(r, "/queue/alice", "c", "r3"), "/queue/alice", "subscribe")
    r, f, _ = logins(srv, None, tok)
    assert_denied(r, subscribe(r, "/topic/sport", "d", "r4"), "/topic/sport", "subscribe")
    # a wildcard subscription wider than the claim
    r, f, _ = logins(srv, None, tok)
    assert_denied(r, subscribe(r, "/topic/#", "e", "r5"), "/topic/#", "subscribe")


def test_herald_send_replaces_the_rules_for_send(hs, logins):
    srv = hs()
    tok = hs256_token(SECRET, claims("alice", herald_send=["/queue/rose", "/topic/chat.*"]))
    guard, f, _ = logins(srv, "guest", "guest")
    assert_connected(f)
    assert_receipt(subscribe(guard, "/queue/rose", "g", "rg"), "rg")
    r, f, _ = logins(srv, None, tok)
    assert_connected(f, "alice")
    assert_receipt(send(r, "/queue/rose", "hello rose", "s1"), "s1")
    assert_receipt(send(r, "/topic/chat.room1", "hi", "s2"), "s2")
    msg = guard.recv_frame()
    assert msg.cmd == "MESSAGE" and msg.body == b"hello rose", msg
    # own queue is allowed by the default rules, but the claim replaces them
    assert_denied(r, send(r, "/queue/alice", "x", "s3"), "/queue/alice", "send")
    # herald_send does not widen SUBSCRIBE
    r, f, _ = logins(srv, None, tok)
    assert_denied(r, subscribe(r, "/queue/rose", "x", "s4"), "/queue/rose", "subscribe")


def test_empty_scope_claims_allow_nothing(hs, logins):
    srv = hs()
    tok = hs256_token(SECRET, claims("alice", herald_sub=[], herald_send=[]))
    r, f, _ = logins(srv, None, tok)
    assert_connected(f, "alice")
    assert_denied(r, subscribe(r, "/queue/alice", "a", "r1"), "/queue/alice", "subscribe")
    r, f, _ = logins(srv, None, tok)
    assert_denied(r, send(r, "/queue/alice", "x", "r2"), "/queue/alice", "send")


def test_herald_tags_service_may_send_anywhere(hs, logins):
    srv = hs()
    tok = hs256_token(SECRET, claims("billing", herald_tags=["service"]))
    r, f, _ = logins(srv, None, tok)
    assert_connected(f, "billing")
    assert_receipt(send(r, "/queue/jack", "j", "s1"), "s1")
    assert_receipt(send(r, "/queue/rose", "r", "s2"), "s2")
    assert_receipt(send(r, "/topic/x.y", "t", "s3"), "s3")
    assert_denied(r, subscribe(r, "/queue/rose", "a", "s4"), "/queue/rose", "subscribe")


def test_herald_tags_administrator_may_do_everything(hs, logins):
    srv = hs()
    tok = hs256_token(SECRET, claims("root", herald_tags=["administrator"]))
    r, f, _ = logins(srv, None, tok)
    assert_connected(f, "root")
    assert_receipt(subscribe(r, "/queue/rose", "a", "s1"), "s1")
    assert_receipt(send(r, "/queue/jack", "j", "s2"), "s2")


def test_herald_vhosts_picks_the_virtual_hosts(hs, logins):
    srv = hs("--vhosts", "/,prod,staging")
    plain = hs256_token(SECRET, claims("alice"))
    prod = hs256_token(SECRET, claims("alice", herald_vhosts=["prod"]))
    every = hs256_token(SECRET, claims("alice", herald_vhosts=["*"]))
    r, f, _ = logins(srv, None, plain, host="/")
    assert_connected(f, "alice", "no claim, vhost /")
    r, f, _ = logins(srv, None, plain, host="prod")
    assert_refused(r, f, "no claim, vhost prod")
    assert b"Virtual host 'prod'" in f.body, f
    r, f, _ = logins(srv, None, prod, host="prod")
    assert_connected(f, "alice", "herald_vhosts [prod], vhost prod")
    r, f, _ = logins(srv, None, prod, host="/")
    assert_refused(r, f, "herald_vhosts [prod], vhost /")
    for vh in ("/", "prod", "staging"):
        r, f, _ = logins(srv, None, every, host=vh)
        assert_connected(f, "alice", "herald_vhosts [*], vhost %s" % vh)
    r, f, _ = logins(srv, None, every, host="nope")
    assert_refused(r, f, "herald_vhosts [*], unknown vhost")


# ---- expiry while connected -------------------------------------------------------------

def _expiry_case(srv, logins, exp, close_at, subscribe_first=True):
    tok = hs256_token(SECRET, {"sub": "alice", "exp": exp})
    r, f, _ = logins(srv, None, tok, timeout=10.0)
    assert_connected(f, "alice")
    if subscribe_first:
        assert_receipt(subscribe(r, "/queue/alice", "a", "r1"), "r1")
    frames, closed = r.recv_until_closed(timeout=close_at - time.time() + 3.0)
    now = time.time()
    errors = [x for x in frames if x.cmd == "ERROR"]
    assert errors, "no ERROR at token expiry; frames=%r closed=%s" % (frames, closed)
    assert closed, "connection still open after the expiry ERROR %r" % errors[0]
    err = errors[0]
    assert "expired" in (err.get("message", "") + err.body.decode()).lower(), err
    # the ERROR came at expiry: not (noticeably) before it, and promptly after it
    assert now >= close_at - 0.1, "closed %.2fs before the token's expiry" % (close_at - now)
    assert now <= close_at + 1.5, "closed %.2fs after the token's expiry" % (now - close_at)
    return err


@pytest.mark.timeout(20)
@pytest.mark.backend_sensitive
def test_token_expiry_closes_the_connection_with_an_error_at_exp(hs, logins):
    srv = hs()
    exp = int(time.time()) + 2
    _expiry_case(srv, logins, exp, exp)


@pytest.mark.timeout(20)
@pytest.mark.backend_sensitive
def test_token_expiry_with_leeway_closes_at_exp_plus_leeway(hs, logins):
    srv = hs("--jwt-leeway-s", "1")
    exp = int(time.time()) + 1
    _expiry_case(srv, logins, exp, exp + 1)


@pytest.mark.timeout(20)
@pytest.mark.backend_sensitive
def test_token_expiry_while_heart_beating_and_receiving(hs, logins):
    """Traffic and heart-beats do not keep an expired session alive."""
    srv = hs()
    pub, f2, _ = logins(srv, "guest", "guest")
    assert_connected(f2)
    exp = int(time.time()) + 3
    tok = hs256_token(SECRET, {"sub": "alice", "exp": exp})
    r, f, _ = logins(srv, None, tok, extra=[("heart-beat", "200,200")])
    assert_connected(f, "alice")
    assert_receipt(subscribe(r, "/topic/tick", "t", "rt"), "rt")
    errors, closed, got = [], False, 0
    while time.time() < exp + 3:
        r.send(b"\n")
        pub.send_frame("SEND", [("destination", "/topic/tick")], b"tick")
        try:
            frames = r.pump(0.1)
        except Closed as e:
            frames, closed = e.frames, True
        got += sum(1 for x in frames if x.cmd == "MESSAGE")
        errors += [x for x in frames if x.cmd == "ERROR"]
        if closed:
            break
    now = time.time()
    assert got > 0, "the session received nothing before expiry"
    assert closed, "connection still open %.1fs after exp" % (now - exp)
    assert errors and "expired" in errors[0].get("message", "").lower(), errors
    assert exp - 0.1 <= now <= exp + 1.5, "closed at exp%+.2fs" % (now - exp)


def test_hs256_secret_shorter_than_32_bytes_is_refused_at_start(herald_bin, tmp_path):
    p = tmp_path / "short.secret"
    p.write_text("too-short-secret\n")
    proc = subprocess.run([herald_bin, "--bind", "127.0.0.1", "--stomp-port", "0", "--ws-port",
                           "0", "--cluster", "false", "--admin-port", "0", "--shards", "1",
                           "--jwt-hs256-secret-file", str(p)], stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=10)
    assert proc.returncode != 0, (proc.stdout + proc.stderr).decode()


def test_token_sub_does_not_inherit_a_password_users_tags(hs, logins):
    """A token names a user; its rights come from its own claims, not from a same-named
    password user (ops is an administrator by --user, the token says nothing)."""
    srv = hs("--user", "ops:opspw:administrator")
    r, f, _ = logins(srv, None, hs256_token(SECRET, claims("ops")))
    assert_connected(f, "ops")
    assert_denied(r, subscribe(r, "/queue/rose", "a", "r1"), "/queue/rose", "subscribe")


def test_token_sub_guest_is_not_the_default_administrator(hs, logins):
    srv = hs()
    r, f, _ = logins(srv, "guest", hs256_token(SECRET, claims("guest")))
    assert_connected(f, "guest")
    assert_denied(r, subscribe(r, "/queue/rose", "a", "r1"), "/queue/rose", "subscribe")


def _raw_claims_token(text):
    import hashlib
    import hmac
    head = b64url_json({"alg": "HS256", "typ": "JWT"})
    payload = b64url(text.encode())
    sig = hmac.new(SECRET.encode(), (head + "." + payload).encode(), hashlib.sha256).digest()
    return head + "." + payload + "." + b64url(sig)


def test_exp_with_a_fraction_is_accepted_and_an_exponent_refused(hs, logins):
    srv = hs()
    exp = int(time.time()) + 120
    r, f, _ = logins(srv, None, _raw_claims_token('{"sub":"alice","exp":%d.75}' % exp))
    assert_connected(f, "alice", "exp with a fraction")
    _refused(srv, logins, _raw_claims_token('{"sub":"alice","exp":%de0}' % exp), "exp 1e0 form")
    _refused(srv, logins, _raw_claims_token('{"sub":"alice","exp":"%d"}' % exp), "exp a string")
