"""The string-table mechanism every page shares (web/vitrine-i18n.js), run by the machine's ``node`` without a browser.

Locale negotiation (an explicit choice, then the browser's languages, then English; every Chinese tag reads the zh
table), ``t()`` with placeholders, counts and the fallback to English (never a raw key), and every page's tables:
each language of a page has exactly the English keys, so nothing on a page is left untranslated.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

WEB = Path(__file__).resolve().parents[2] / "web"
NODE_TIMEOUT_S = 30.0

# Each page's string tables: its module and the languages it must have (the consoles: zh and en; the
# player, the widget and the buyer's inspection page: the widget's five).
TABLES = {
    "agent/strings.js": ["en", "zh"],
    "live/console-strings.js": ["en", "zh"],
    "inspector/strings.js": ["en", "zh"],
    "live/player-strings.js": ["en", "zh", "es", "fr", "de"],
    "widget/i18n.js": ["en", "zh", "es", "fr", "de"],
    "inspect/strings.js": ["en", "zh", "es", "fr", "de"],
}

SCRIPT = """
const i18n = await import("./web/vitrine-i18n.js");
const { negotiate, translator, formatLocale, translateDom } = i18n;
const supported = ["en", "zh", "fr"];
const tables = {
  en: { hello: "Hello {name}", items: { one: "1 item", other: "{n} items" }, english_only: "Only in English" },
  zh: { hello: "你好，{name}", items: { other: "{n} 件商品" } },
};
const zh = translator(tables, "zh");
const en = translator(tables, "en");
const warnings = [];
console.warn = (text) => warnings.push(text);
const out = {
  negotiated: {
    zh_cn: negotiate(supported, { preferred: ["zh-CN", "en"] }),
    zh_hans: negotiate(supported, { preferred: ["zh-Hans"] }),
    zh_tw: negotiate(supported, { preferred: ["zh-TW"] }),
    underscore: negotiate(supported, { preferred: ["ZH_cn"] }),
    explicit_wins: negotiate(supported, { explicit: "fr-CA", preferred: ["zh-CN"] }),
    explicit_unknown: negotiate(supported, { explicit: "pt", preferred: ["de-DE", "zh-CN"] }),
    first_known: negotiate(supported, { explicit: [null, "xx", "fr"], preferred: [] }),
    nothing_known: negotiate(supported, { preferred: ["pt-BR", "ja"] }),
  },
  texts: {
    zh_hello: zh("hello", { name: "小安" }),
    zh_items: zh("items", { n: 3 }),
    zh_fallback: zh("english_only"),
    zh_missing: zh("no_such_key"),
    en_one: en("items", { n: 1 }),
    en_many: en("items", { n: 12 }),
    unfilled: en("hello"),
    unknown_lang: translator(tables, "xx")("hello", { name: "Ann" }),
  },
  warnings,
  locales: { zh: formatLocale("zh", ["zh-CN", "en-US"]), en: formatLocale("en", ["zh-CN", "en-GB"]),
    bare: formatLocale("fr", ["zh-CN"]) },
  tables: {},
};
for (const path of PATHS) {
  const { MESSAGES } = await import(`./web/${path}`);
  out.tables[path] = Object.fromEntries(Object.entries(MESSAGES).map(([lang, table]) => [lang, Object.keys(table)]));
}
// translateDom on a minimal stand-in for the DOM: the text and the attributes named by the data attributes.
const attrs = { "data-i18n": "hello", "data-i18n-placeholder": "english_only", "data-i18n-title": "no_such_key" };
const el = { textContent: "Hello", attributes: {}, getAttribute: (name) => attrs[name] ?? null,
  setAttribute(name, value) { this.attributes[name] = value; } };
translateDom({ querySelectorAll: () => [el] }, zh);
out.dom = { text: el.textContent, attributes: el.attributes };
console.log(JSON.stringify(out));
"""


def _node() -> str:
    node = shutil.which("node")
    assert node, "node is not installed (Debian: apt-get install nodejs)"
    return node


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The script's answers. The modules are copied under a package.json of type "module": node reads web/'s
    plain .js files as ES modules there, as browsers do, whatever its version."""
    root = tmp_path_factory.mktemp("i18n")
    shutil.copytree(WEB, root / "web", ignore=shutil.ignore_patterns("*.css", "*.html", "*.png", "*.svg"))
    (root / "package.json").write_text('{"type": "module"}')
    (root / "check.mjs").write_text(f"const PATHS = {json.dumps(list(TABLES))};\n{SCRIPT}")
    done = subprocess.run(
        [_node(), "check.mjs"], cwd=root, capture_output=True, text=True, timeout=NODE_TIMEOUT_S, check=False
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_the_language_is_the_first_choice_a_page_has_a_table_for(results: dict[str, Any]) -> None:
    assert results["negotiated"] == {
        "zh_cn": "zh",
        "zh_hans": "zh",
        "zh_tw": "zh",  # one Chinese table for now
        "underscore": "zh",
        "explicit_wins": "fr",
        "explicit_unknown": "zh",  # no German table: the browser's next language
        "first_known": "fr",
        "nothing_known": "en",
    }


def test_texts_fill_placeholders_count_and_fall_back_to_english_never_to_a_key(results: dict[str, Any]) -> None:
    assert results["texts"] == {
        "zh_hello": "你好，小安",
        "zh_items": "3 件商品",
        "zh_fallback": "Only in English",
        "zh_missing": "",  # a bug, reported on the console, but never "no_such_key" on the page
        "en_one": "1 item",
        "en_many": "12 items",
        "unfilled": "Hello {name}",
        "unknown_lang": "Hello Ann",
    }
    assert any("no_such_key" in warning for warning in results["warnings"])


def test_dates_and_numbers_use_the_browsers_variant_of_the_language(results: dict[str, Any]) -> None:
    assert results["locales"] == {"zh": "zh-CN", "en": "en-GB", "bare": "fr"}


def test_the_dom_helper_fills_text_and_attributes_and_keeps_text_it_has_no_key_for(results: dict[str, Any]) -> None:
    assert results["dom"] == {"text": "你好，{name}", "attributes": {"placeholder": "Only in English"}}


@pytest.mark.parametrize("path", list(TABLES))
def test_every_language_of_a_page_has_exactly_the_english_keys(results: dict[str, Any], path: str) -> None:
    tables = results["tables"][path]
    assert sorted(tables) == sorted(TABLES[path])
    english = set(tables["en"])
    assert {lang: (sorted(english - set(keys)), sorted(set(keys) - english)) for lang, keys in tables.items()} == {
        lang: ([], []) for lang in tables
    }
