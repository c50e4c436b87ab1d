"""The viewer page's ledger check (deployments/static/ledger-check.js) in Debian's headless
Chromium, against proofs and signed tree heads made by the Python ledger: every leaf of trees of
several sizes verifies, each kind of forgery fails with the reason `orbitcast verify` gives, and
a later head is held to the earlier one by the consistency proof.
No Ray: the script runs in a page Playwright serves from http://127.0.0.1/ (a secure context,
where the browser offers WebCrypto)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from orbitcast.ledger import MerkleTree, SignedTreeHead
from orbitcast.ledger.leaf import LeafFields

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCRIPT = Path(__file__).resolve().parents[2] / "deployments" / "static" / "ledger-check.js"
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
SIZES = (1, 2, 3, 5, 8, 13, 33)

# Each case checked as given and with one thing forged; returns [{ok, reason, signature}] per check.
CHECK_ALL = """async ({key, otherKey, cases}) => {
  const L = OrbitcastLedger, out = [];
  const flip = hex => (hex[0] === '0' ? '1' : '0') + hex.slice(1);
  for (const c of cases) {
    const base = {data: L.fromHex(c.data), proof: c.proof, publicKey: key, feed: 'synth', rendition: '360p', seq: c.seq, pdt: c.pdt};
    const head = c.proof.tree_head, data = L.fromHex(c.data);
    data[0] ^= 1;
    const forged = {
      good: base,
      bytes: {...base, data},
      seq: {...base, seq: c.seq + 1},
      pdt: {...base, pdt: '2030-01-01T00:00:00.000Z'},
      signature: {...base, proof: {...c.proof, tree_head: {...head, signature: flip(head.signature)}}},
      key: {...base, publicKey: otherKey},
      root: {...base, proof: {...c.proof, tree_head: {...head, root_hash: flip(head.root_hash)}}},
    };
    if (c.proof.audit_path.length) forged.path = {...base, proof: {...c.proof, audit_path: [flip(c.proof.audit_path[0]), ...c.proof.audit_path.slice(1)]}};
    for (const [kind, args] of Object.entries(forged)) out.push({kind, ...(await L.checkSegment(args))});
  }
  return out;
}"""


# Heads of one log at two sizes: the later extends the earlier by the consistency proof; a
# changed proof hash, a rewritten later root, or a smaller later head does not.
CHECK_HEADS = """async (pairs) => {
  const L = OrbitcastLedger, out = [];
  const flip = hex => (hex[0] === '0' ? '1' : '0') + hex.slice(1);
  for (const {earlier, later, proof} of pairs) {
    const given = async () => ({proof});
    const forged = async () => ({proof: proof.length ? [flip(proof[0]), ...proof.slice(1)] : proof});
    out.push({kind: 'good', reason: await L.extendsHead(earlier, later, given)});
    if (proof.length) out.push({kind: 'path', reason: await L.extendsHead(earlier, later, forged)});
    out.push({kind: 'root', reason: await L.extendsHead(earlier, {...later, root_hash: flip(later.root_hash)}, given)});
    if (earlier.tree_size < later.tree_size) out.push({kind: 'shrank', reason: await L.extendsHead(later, earlier, given)});
  }
  return out;
}"""


def cases(key: SigningKey) -> list[dict]:
    out = []
    for n in SIZES:
        media = [hashlib.sha256(f"{n}/{i}".encode()).digest() * (i + 1) for i in range(n)]
        pdts = [f"2026-12-03T19:40:{i:02d}.{n:03d}Z" for i in range(n)]
        leaves = [LeafFields.of("synth", "360p", 100 + i, pdts[i], len(m), hashlib.sha256(m).digest()).encode()
                  for i, m in enumerate(media)]
        tree = MerkleTree.from_leaves(leaves)
        head = SignedTreeHead.sign(key, "synth", n, 1_764_000_000_000 + n, tree.root()).to_json()
        for i in range(n):
            proof = {"leaf_index": i, "leaf": leaves[i].hex(), "tree_head": head,
                     "audit_path": [h.hex() for h in tree.inclusion_proof(i)]}
            out.append({"data": media[i].hex(), "proof": proof, "seq": 100 + i, "pdt": pdts[i]})
    return out


def head_pairs(key: SigningKey) -> list[dict]:
    tree = MerkleTree.from_leaves([f"leaf {i}".encode() for i in range(max(SIZES))])
    head = {n: SignedTreeHead.sign(key, "synth", n, n, tree.root(n)).to_json() for n in range(1, max(SIZES) + 1)}
    return [{"earlier": head[m], "later": head[n], "proof": [h.hex() for h in tree.consistency_proof(m, n)]}
            for n in SIZES for m in range(1, n + 1)]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make test installs it)")
def test_the_browser_check_agrees_with_the_python_ledger():
    from playwright.sync_api import sync_playwright

    key, other = SigningKey.generate(), SigningKey.generate()
    given = cases(key)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = browser.new_page()
            page.route("http://127.0.0.1/", lambda route: route.fulfill(
                body=f"<!doctype html><script>{SCRIPT.read_text()}</script>", content_type="text/html"))
            page.goto("http://127.0.0.1/")
            assert page.evaluate("() => OrbitcastLedger.available") is True
            results = page.evaluate(CHECK_ALL, {"key": bytes(key.verify_key).hex(),
                                                "otherKey": bytes(other.verify_key).hex(), "cases": given})
            heads = page.evaluate(CHECK_HEADS, head_pairs(key))
        finally:
            browser.close()
    by_kind: dict[str, list[dict]] = {}
    for r in results:
        by_kind.setdefault(r["kind"], []).append(r)
    assert len(by_kind["good"]) == sum(SIZES)
    # Debian's Chromium has Ed25519 in WebCrypto: the head's signature is checked, not skipped.
    assert all(r["ok"] and r["signature"] == "verified" for r in by_kind["good"]), by_kind["good"][:3]
    expected = {
        "bytes": "bytes differ from the ledger",
        "seq": "proof is for synth/360p/",
        "pdt": "playlist program date-time 2030-01-01T00:00:00.000Z differs from the ledger's",
        "signature": "tree head at size",
        "key": "tree head at size",
        "root": "tree head at size",  # a root swapped in a signed head breaks the signature
        "path": "not in the log: audit path leads to a different root",
    }
    for kind, reason in expected.items():
        assert by_kind[kind] and all(not r["ok"] and r["reason"].startswith(reason) for r in by_kind[kind]), \
            (kind, by_kind[kind][:2])
    assert all(r["reason"].endswith("signature does not verify") for k in ("signature", "key", "root") for r in by_kind[k])
    # Heads: every later head extends every earlier one; forgeries are named.
    kinds: dict[str, list] = {}
    for r in heads:
        kinds.setdefault(r["kind"], []).append(r["reason"])
    assert len(kinds["good"]) == sum(SIZES) and all(r is None for r in kinds["good"]), kinds["good"][:3]
    assert kinds["path"] and all(r and "does not extend" in r for r in kinds["path"]), kinds["path"][:2]
    assert all(r and "does not extend" in r for r in kinds["root"]), kinds["root"][:2]
    assert kinds["shrank"] and all(r and "log shrank" in r for r in kinds["shrank"]), kinds["shrank"][:2]
