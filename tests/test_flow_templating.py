"""Flow templating: lookups, filters, missing variables, and that templates stay sandboxed.

Templates are typed by operators in admin and rendered with data typed by WhatsApp users, so
besides the happy path these tests pin down what a template must *not* be able to do: reach
private names, call anything, or read attributes of objects.
"""

from __future__ import annotations

import json
import string
from decimal import Decimal
from types import MappingProxyType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flows.templating import (
    check_template,
    has_placeholders,
    lookup,
    render,
    render_spec,
    render_value,
)

CONTEXT = {
    "name": "Thandiwe",
    "email": "thandi@example.com",
    "balance": Decimal("1250.5"),
    "stake": 20,
    "fixtures": [
        {"id": 1035046, "home": "Arsenal", "away": "Chelsea", "odds": {"home": 2.1}},
        {"id": 1035047, "home": "Everton", "away": "Fulham", "odds": {"home": 3.4}},
    ],
    "contact": {"wa_id": "27821234567", "name": "Thandi", "city": "Durban"},
    "empty": "",
    "nothing": None,
}


# ------------------------------------------------------------------ lookups


def test_plain_and_nested_lookups() -> None:
    result = render("Hi {{ name }} from {{contact.city}}!", CONTEXT)
    assert result.text == "Hi Thandiwe from Durban!"
    assert result.missing == ()
    assert result.errors == ()


def test_list_indexes_and_deep_paths() -> None:
    result = render("{{ fixtures.1.home }} v {{ fixtures.1.away }} @ {{ fixtures.0.odds.home }}", CONTEXT)
    assert result.text == "Everton v Fulham @ 2.1"


def test_out_of_range_index_is_missing() -> None:
    result = render("[{{ fixtures.5.home }}]", CONTEXT)
    assert result.text == "[]"
    assert result.missing == ("fixtures.5.home",)


def test_missing_variable_renders_empty_and_is_reported_once() -> None:
    result = render("Dear {{ surname }}, {{ surname }} and {{ contact.age }}", CONTEXT)
    assert result.text == "Dear ,  and "
    assert result.missing == ("surname", "contact.age")


def test_none_renders_empty_but_is_not_missing() -> None:
    result = render("[{{ nothing }}]", CONTEXT)
    assert result.text == "[]"
    assert result.missing == ()


def test_values_are_rendered_as_readable_text() -> None:
    context = {"flag": True, "items": ["a", "b"], "n": 3, "f": 2.5}
    assert render("{{ flag }} {{ n }} {{ f }}", context).text == "true 3 2.5"
    assert render("{{ items }}", context).text == '["a", "b"]'


# ------------------------------------------------------------------ filters


def test_default_filter_with_either_quote_style_covers_missing_none_and_empty() -> None:
    assert render('Hi {{ contact.nickname | default:"there" }}', CONTEXT).text == "Hi there"
    assert render("Hi {{ nothing|default:'you' }}", CONTEXT).text == "Hi you"
    assert render('Hi {{ empty | default:"friend" }}', CONTEXT).text == "Hi friend"
    assert render('Hi {{ name | default:"friend" }}', CONTEXT).text == "Hi Thandiwe"
    # A default means the author expected absence: nothing to report.
    assert render('{{ contact.nickname | default:"there" }}', CONTEXT).missing == ()


def test_case_filters_chain() -> None:
    assert render("{{ name | upper }}", CONTEXT).text == "THANDIWE"
    assert render("{{ contact.city | lower }}", CONTEXT).text == "durban"
    assert render("{{ fixtures.0.home | lower | title }}", CONTEXT).text == "Arsenal"
    assert render('{{ missing | default:"mr smith" | title }}', CONTEXT).text == "Mr Smith"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("1250.5"), "1250.50"),
        (20, "20.00"),
        (2.005, "2.01"),  # half-up on the decimal text, not binary float rounding
        ("7.125", "7.13"),
        ("-3", "-3.00"),
        ("abc", "abc"),  # not a number: left as is rather than blanked
    ],
)
def test_money_filter_formats_two_decimals(value: object, expected: str) -> None:
    assert render("{{ v | money }}", {"v": value}).text == expected


def test_unknown_filter_and_bad_arguments_are_errors_not_crashes() -> None:
    result = render("A{{ name | shout }}B", CONTEXT)
    assert result.text == "AB"
    assert "unknown filter 'shout'" in result.errors[0]
    assert render("{{ name | default }}", CONTEXT).errors  # default needs an argument
    assert render('{{ name | upper:"x" }}', CONTEXT).errors  # upper takes none


# ------------------------------------------------------------------ safety


class Account:
    """An object with attributes a template must never read."""

    name = "should not leak"
    secret = "hunter2"

    def __str__(self) -> str:
        return "Account"


@pytest.mark.parametrize(
    "template",
    [
        "{{ _private }}",
        "{{ contact._wa_id }}",
        "{{ name.__class__ }}",
        "{{ fixtures.__len__ }}",
        "{{ __import__ }}",
    ],
)
def test_private_names_are_refused(template: str) -> None:
    context = {**CONTEXT, "_private": "secret", "__import__": __import__}
    result = render(template, context)
    assert result.text == ""
    assert result.errors and "starting with '_'" in result.errors[0]
    assert check_template(template)


@pytest.mark.parametrize(
    "template",
    ["{{ name.upper() }}", "{{ print(name) }}", "{{ contact.items() }}", "{{ len(fixtures) }}"],
)
def test_calls_are_refused(template: str) -> None:
    result = render(template, CONTEXT)
    assert result.text == ""
    assert "calls are not allowed" in result.errors[0]


def test_no_attribute_access_on_objects_or_builtin_methods() -> None:
    context = {"account": Account(), "name": "Thandiwe", "data": {"k": 1}}
    # Attributes of an object are invisible: only mapping keys and sequence indexes resolve.
    assert render("{{ account.secret }}", context).text == ""
    assert render("{{ account.secret }}", context).missing == ("account.secret",)
    # str.upper / dict.items are attributes, not keys: unreachable without a call syntax too.
    assert render("{{ name.upper }}", context).text == ""
    assert render("{{ data.items }}", context).text == ""
    assert render("{{ data.keys }}", context).missing == ("data.keys",)


def test_lookup_never_uses_getattr() -> None:
    assert lookup({"a": Account()}, "a.name") == (False, None)
    assert lookup({"a": {"name": "x"}}, "a.name") == (True, "x")
    assert lookup({"a": ("p", "q")}, "a.1") == (True, "q")
    assert lookup({"a": "text"}, "a.0") == (False, None)  # strings are not indexable here


def test_check_template_lists_syntax_problems() -> None:
    assert check_template("Hello {{ name }} {{ contact.city | upper }}") == []
    assert check_template("Hello {{ name") == ["unclosed '{{' (every '{{' needs a matching '}}')"]
    assert check_template("{{ }}")  # empty expression
    assert check_template("{{ 9lives }}")  # must start with a letter
    assert check_template("{{ a..b }}")
    assert check_template("{{ 'x' }}")  # literals are not expressions


# ------------------------------------------------------------------ values and specs


def test_render_value_keeps_types_for_whole_placeholders() -> None:
    result = render_value(
        {
            "league": "{{ fixtures.0.id }}",
            "label": "Fixture {{ fixtures.0.id }}",
            "odds": "{{ fixtures.0.odds }}",
            "list": ["{{ stake }}", 5],
            "absent": "{{ nope }}",
        },
        CONTEXT,
    )
    assert result.value == {
        "league": 1035046,
        "label": "Fixture 1035046",
        "odds": {"home": 2.1},
        "list": [20, 5],
        "absent": None,
    }
    assert result.missing == ("nope",)


def test_render_spec_renders_every_text_field_and_returns_plain_json() -> None:
    spec = MappingProxyType(
        {
            "type": "buttons",
            "header": "{{ contact.city }} desk",
            "body": "Bet {{ stake | money }} on {{ fixtures.0.home }}?",
            "footer": "Balance {{ balance | money }}",
            "buttons": (
                MappingProxyType({"id": "bet:{{ fixtures.0.id }}", "title": "Yes, {{ name }}"}),
                MappingProxyType({"id": "no", "title": "No"}),
            ),
        }
    )
    result = render_spec(spec, CONTEXT)
    assert result.spec == {
        "type": "buttons",
        "header": "Durban desk",
        "body": "Bet 20.00 on Arsenal?",
        "footer": "Balance 1250.50",
        "buttons": [{"id": "bet:1035046", "title": "Yes, Thandiwe"}, {"id": "no", "title": "No"}],
    }
    json.dumps(result.spec)  # frozen input, plain output


def test_render_spec_never_templates_structural_keys() -> None:
    spec = {"type": "media", "media_type": "{{ kind }}", "link": "https://cdn.example.com/{{ file }}"}
    result = render_spec(spec, {"kind": "image", "file": "a.png"})
    assert result.spec["media_type"] == "{{ kind }}"
    assert result.spec["link"] == "https://cdn.example.com/a.png"


def test_render_spec_renders_template_components_and_reports_missing() -> None:
    spec = {
        "type": "template",
        "name": "bet_settled",
        "language": "en",
        "components": [
            {
                "type": "body",
                "parameters": [
                    {"type": "text", "text": "{{ name }}"},
                    {"type": "text", "text": "{{ payout | money }}"},
                ],
            }
        ],
    }
    result = render_spec(spec, CONTEXT)
    assert result.spec["components"][0]["parameters"][0] == {"type": "text", "text": "Thandiwe"}
    assert result.spec["components"][0]["parameters"][1]["text"] == ""
    assert result.missing == ("payout",)


def test_has_placeholders() -> None:
    assert has_placeholders({"a": ["x", {"b": "{{ y }}"}]})
    assert not has_placeholders({"a": ["x", {"b": "{ y }"}], "n": 3})


# ------------------------------------------------------------------ properties

identifiers = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)
scalars = st.one_of(
    st.text(max_size=30),
    st.integers(),
    st.none(),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
)


@given(template=st.text(max_size=200), context=st.dictionaries(identifiers, scalars, max_size=5))
def test_render_never_raises(template: str, context: dict) -> None:
    result = render(template, context)
    assert isinstance(result.text, str)


@given(text=st.text(alphabet=st.characters(blacklist_characters="{}"), max_size=200))
def test_text_without_braces_is_unchanged(text: str) -> None:
    assert render(text, CONTEXT) == render(text, {})
    assert render(text, {}).text == text


@given(name=identifiers, value=st.text(alphabet=string.printable, max_size=40))
def test_a_placeholder_renders_its_value(name: str, value: str) -> None:
    # The rendered value is never re-interpreted, whatever braces a user typed into it.
    assert render("<{{ " + name + " }}>", {name: value}).text == f"<{value}>"


@given(name=st.from_regex(r"_[A-Za-z0-9_]{0,10}", fullmatch=True))
def test_any_underscore_name_is_refused(name: str) -> None:
    result = render("{{ " + name + " }}", {name: "secret"})
    assert result.text == ""
    assert result.errors


def test_two_placeholders_in_one_value_render_as_text_not_as_one_expression():
    from flows.templating import render_value

    assert render_value("{{ a }} {{ b }}", {"a": "x", "b": 2}).value == "x 2"
    assert render_value("{{ n }}", {"n": 2}).value == 2  # exactly one placeholder keeps its type
