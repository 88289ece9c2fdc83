"""The bundle's ``report.html``: what a dispute reviewer reads first, in any browser, offline.

One self-contained page: no script, no external resource (images are relative links to the bundle's own
files), a policy that forbids scripts in case escaping ever failed, and every piece of text escaped:
the claim, notes and chat come from buyers and sellers and are untrusted. Times are UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

from signaling.inspect.timeline import TimelineRow
from vitrine.core.wire.inspect import Artifact, ArtifactKind, Case

IMAGE_KINDS = (ArtifactKind.PHOTO, ArtifactKind.SNAPSHOT)
STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#1d1d1f}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%}th,td{text-align:left;vertical-align:top;padding:.3rem .5rem;
border-bottom:1px solid #eee}th{white-space:nowrap}.text{white-space:pre-wrap}code{font-size:.8rem;word-break:break-all}
figure{display:inline-block;margin:0 1rem 1rem 0;max-width:18rem}img{max-width:100%;border:1px solid #ccc}
figcaption{font-size:.85rem}
"""


def utc_iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _rows(pairs: Sequence[tuple[str, str]]) -> str:
    """A two-column table; the values are HTML already."""
    return "<table>" + "".join(f"<tr><th>{escape(k)}</th><td>{v}</td></tr>" for k, v in pairs) + "</table>"


def _text(value: str) -> str:
    return f'<span class="text">{escape(value)}</span>'


def _consent(case: Case) -> str:
    if case.consent is None:
        return "<p>No consent was recorded.</p>"
    consent = case.consent
    return (
        f"<p>The buyer agreed to be recorded at {utc_iso(consent.at_ms)} (consent text version "
        f"{consent.version}, language {escape(consent.language)}), to this text:</p>"
        f"<blockquote>{_text(consent.text)}</blockquote>"
    )


def _verdict(case: Case) -> str:
    if case.outcome is None:
        return "<p>No verdict was given.</p>"
    outcome = case.outcome
    return _rows(
        [
            ("Verdict", escape(outcome.verdict.value)),
            ("Comment", _text(outcome.comment or "(none)")),
            ("By", escape(outcome.by)),
            ("At", utc_iso(outcome.at_ms)),
        ]
    )


def _notes(case: Case) -> str:
    if not case.notes:
        return "<p>No notes.</p>"
    return (
        "<table><tr><th>Time (UTC)</th><th>Author</th><th>Note</th></tr>"
        + "".join(
            f"<tr><td>{utc_iso(n.at_ms)}</td><td>{escape(n.author)}</td><td>{_text(n.text)}</td></tr>"
            for n in case.notes
        )
        + "</table>"
    )


def _timeline(timeline: Sequence[TimelineRow]) -> str:
    if not timeline:
        return "<p>No events.</p>"
    return (
        "<table><tr><th>Time (UTC)</th><th>Who</th><th>What</th></tr>"
        + "".join(
            f"<tr><td>{utc_iso(row.at_ms)}</td><td>{escape(row.who)}</td><td>{_text(row.what)}</td></tr>"
            for row in timeline
        )
        + "</table>"
    )


def _images(artifacts: Sequence[Artifact]) -> str:
    figures = []
    for artifact in artifacts:
        if artifact.kind not in IMAGE_KINDS:
            continue
        caption = f"{artifact.kind.value}, {utc_iso(artifact.captured_at_ms)}"
        if artifact.request:
            caption += f", answering “{artifact.request}”"
        src = escape(f"artifacts/{artifact.file}")
        figures.append(
            f'<figure><a href="{src}"><img src="{src}" alt="{escape(caption)}"></a>'
            f"<figcaption>{escape(caption)}</figcaption></figure>"
        )
    return "".join(figures) or "<p>No photos or snapshots.</p>"


def _artifact_table(artifacts: Sequence[Artifact]) -> str:
    rows = "".join(
        f'<tr><td><a href="{escape(f"artifacts/{a.file}")}">{escape(a.file)}</a></td><td>{escape(a.kind.value)}</td>'
        f"<td>{a.bytes}</td><td>{utc_iso(a.captured_at_ms)}</td><td>{escape(a.source)}</td>"
        f"<td><code>{escape(a.sha256)}</code></td></tr>"
        for a in artifacts
    )
    return (
        "<table><tr><th>File</th><th>Kind</th><th>Bytes</th><th>Captured (UTC)</th><th>Source</th>"
        f"<th>SHA-256</th></tr>{rows}</table>"
    )


def render_report(
    case: Case,
    *,
    shop_name: str,
    timeline: Sequence[TimelineRow],
    artifacts: Sequence[Artifact],
    key_id: str,
    generated_at_ms: int,
) -> str:
    """The report of a case whose ``artifacts`` (in bundle order) are exported with it, signed by ``key_id``."""
    facts = _rows(
        [
            ("Case", escape(case.id)),
            ("Shop", f"{escape(shop_name)} ({escape(case.shop)})"),
            ("Order", escape(case.order_ref)),
            ("Claim", _text(case.claim)),
            ("Language", escape(case.language)),
            ("Opened", utc_iso(case.created_at_ms)),
            ("Closed", utc_iso(case.closed_at_ms) if case.closed_at_ms is not None else "not closed"),
            ("Bundle generated", utc_iso(generated_at_ms)),
        ]
    )
    verify = (
        f"<p>Every file of this bundle is listed in <code>manifest.json</code> with its SHA-256, in a hash "
        f"chain, and <code>manifest.sig</code> is an Ed25519 signature of that manifest by key "
        f"<code>{escape(key_id)}</code>. To check offline that nothing was changed, added or removed since "
        "export, run <code>vitrine verify bundle.zip --key shop-evidence-key.pem</code> with the public "
        "key the shop published (without <code>--key</code>, compare the key id it prints with the "
        "shop's); <code>README.txt</code> shows how to check it with standard tools instead.</p>"
    )
    return "".join(
        [
            '<!doctype html><html lang="en"><head><meta charset="utf-8">',
            "<meta http-equiv=\"Content-Security-Policy\" content=\"script-src 'none'; object-src 'none'; "
            "base-uri 'none'; form-action 'none'\">",
            '<meta name="referrer" content="no-referrer">',
            f"<title>Inspection evidence {escape(case.id)}</title><style>{STYLE}</style></head><body>",
            f"<h1>Inspection evidence: order {escape(case.order_ref)}</h1>",
            facts,
            "<h2>Consent</h2>",
            _consent(case),
            "<h2>Verdict</h2>",
            _verdict(case),
            "<h2>Notes</h2>",
            _notes(case),
            "<h2>Timeline</h2>",
            _timeline(timeline),
            "<h2>Photos and snapshots</h2>",
            _images(artifacts),
            "<h2>Files</h2>",
            _artifact_table(artifacts),
            "<h2>Signature</h2>",
            _rows([("Algorithm", "Ed25519"), ("Key id", f"<code>{escape(key_id)}</code>")]),
            "<h2>How to verify this bundle offline</h2>",
            verify,
            "</body></html>\n",
        ]
    )
