"""The template sandbox: what compiles, what a template may read, and hostile templates —
each refused at save time with one clear line, never a hang, a fetch, a file read or a
value that escapes its HTML."""

from __future__ import annotations

import socket

import pytest

from enclave.messaging import rendering
from enclave.messaging.rendering import TemplateError

MJML = ("<mjml><mj-head><mj-style>.lead { color: #c00000; }</mj-style></mj-head><mj-body>"
        "<mj-section><mj-column><mj-text css-class=\"lead\">Hi {{ person.first_name }},"
        " news from {{ account.name }}</mj-text>"
        "<mj-button href=\"{{ unsubscribe_url }}\">Unsubscribe</mj-button>"
        "</mj-column></mj-section></mj-body></mjml>")


def compiled_error(source: str, kind: str = "html", subject: str = "Hi") -> TemplateError:
    with pytest.raises(TemplateError) as caught:
        rendering.compile_template(kind, subject, source)
    return caught.value


def context(**person) -> dict:
    ctx = rendering.sample_context()
    ctx["person"].update(person)
    return ctx


class TestCompile:
    def test_mjml_becomes_html_with_its_css_inlined(self):
        html = rendering.compile_template("mjml", "Hi", MJML)
        assert html.lstrip().lower().startswith("<!doctype html>")
        assert "color: #c00000" in html.split("Hi {{ person.first_name }}")[0][-600:]

    def test_html_style_block_is_inlined_into_the_elements(self):
        html = rendering.compile_template(
            "html", "Hi", "<html><head><style>p { color: blue; }</style></head>"
                          "<body><p>Hello</p></body></html>")
        assert '<p style="color: blue;">Hello</p>' in html

    def test_liquid_survives_compilation_and_personalises_each_recipient(self):
        html = rendering.compile_template("mjml", "Hi {{ person.first_name }}", MJML)
        out = rendering.render("Hi {{ person.first_name }}", html, context(first_name="Bo"))
        assert (out.subject, "Hi Bo, news from Your company" in out.html) == ("Hi Bo", True)

    def test_plain_text_part_keeps_words_and_link_addresses_not_markup(self):
        html = rendering.compile_template("mjml", "Hi", MJML)
        out = rendering.render("Hi", html, context(first_name="Bo"))
        assert "Hi Bo, news from Your company" in out.text
        assert "Unsubscribe (https://example.com/unsubscribe)" in out.text
        assert "<" not in out.text
        assert "c00000" not in out.text

    def test_broken_mjml_is_refused_with_the_compilers_message(self):
        error = compiled_error("<mjml><mj-body><mj-section>", kind="mjml")
        assert (error.field, error.message.startswith("MJML: ")) == ("source", True)

    def test_liquid_syntax_error_names_its_line(self):
        error = compiled_error("<p>ok</p>\n<p>{% if person.email %}</p>")
        assert error.field == "source"
        assert error.message.startswith("Liquid: ")
        assert "(line 2)" in error.message

    def test_subject_on_two_lines_is_refused(self):
        error = compiled_error("<p>x</p>", subject="Hi\r\nBcc: everyone@example.com")
        assert error.field == "subject"

    def test_oversize_source_is_refused_before_anything_parses_it(self):
        error = compiled_error("x" * (rendering.MAX_SOURCE + 1))
        assert (error.field, "100,000" in error.message) == ("source", True)

    def test_unknown_kind_is_refused(self):
        assert compiled_error("<p>x</p>", kind="markdown").field == "kind"


class TestMergeFields:
    @pytest.mark.parametrize("source", [
        "{{ person.password }}", "{{ settings.SECRET_KEY }}", "{{ person.__class__ }}",
        "{{ account.owner.email }}", "{{ request }}", "{{ person.custom.tier }}",
    ])
    def test_a_field_outside_the_allowlist_is_refused_by_name(self, source):
        error = compiled_error(source)
        assert error.message.startswith("Unknown merge field ")

    def test_a_custom_field_of_the_account_is_allowed(self):
        class Definition:
            key = "tier"

        html = rendering.compile_template("html", "Hi", "{{ person.custom.tier }}",
                                          [Definition()])
        assert html

    def test_a_name_assigned_in_the_template_is_not_a_merge_field(self):
        assert rendering.compile_template(
            "html", "Hi", "{% assign n = person.first_name %}{{ n }}")

    def test_a_computed_key_reads_only_what_the_context_holds(self):
        html = rendering.compile_template(
            "html", "Hi", "{% assign k = 'first_name' %}{{ person[k] }}")
        assert "Bo" in rendering.render("Hi", html, context(first_name="Bo")).html


class TestHostileTemplates:
    @pytest.mark.parametrize(("source", "said"), [
        ("{% for a in (1..100000) %}x{% endfor %}", "loops would run more than 10,000"),
        ("{% for a in (1..1000) %}{% for b in (1..1000) %}x{% endfor %}{% endfor %}",
         "loops would run more than 10,000"),
        ("{% assign s = 'xxxxxxxxxx' %}{% for a in (1..40) %}{% assign s = s | append: s %}"
         "{% endfor %}", "assigned and captured values are too large"),
        ("{% for a in (1..9000) %}" + "y" * 300 + "{% endfor %}",
         "longer than 2,000,000 characters"),
    ])
    def test_a_resource_bomb_is_refused_when_saved(self, source, said):
        error = compiled_error(source)
        assert (error.field, said in error.message) == ("source", True)

    def test_a_template_over_its_time_budget_is_stopped(self, monkeypatch):
        monkeypatch.setattr(rendering, "RENDER_SECONDS", -1.0)  # every loop start is late
        error = compiled_error("{% for a in (1..2) %}x{% endfor %}")
        assert "takes longer than" in error.message

    @pytest.mark.parametrize("tag", ["include", "render"])
    def test_loading_another_template_is_not_a_tag(self, tag):
        error = compiled_error(f"{{% {tag} 'etc/passwd' %}}")
        assert f"unexpected tag '{tag}'" in error.message

    def test_mjml_include_reads_no_file(self, tmp_path):
        secret = tmp_path / "secret.mjml"
        secret.write_text("<mj-text>TOP-SECRET-CONTENT</mj-text>")
        error = compiled_error(f'<mjml><mj-body><mj-include path="{secret}" /></mj-body>'
                               "</mjml>", kind="mjml")
        assert "TOP-SECRET-CONTENT" not in error.message
        assert error.field == "source"

    def test_a_remote_stylesheet_is_never_fetched(self):
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        try:
            html = rendering.compile_template(
                "html", "Hi", f'<html><head><link rel="stylesheet" '
                              f'href="http://127.0.0.1:{port}/x.css"></head><body>x</body></html>')
            with pytest.raises(BlockingIOError):
                listener.accept()
        finally:
            listener.close()
        assert f"127.0.0.1:{port}" not in html

    def test_the_safe_filter_is_gone_so_values_are_always_escaped(self):
        error = compiled_error("{{ person.first_name | safe }}")
        assert "unknown filter 'safe'" in error.message

    def test_a_persons_value_is_html_escaped_in_the_body(self):
        html = rendering.compile_template("html", "Hi", "<p>{{ person.first_name }}</p>")
        out = rendering.render("Hi", html, context(first_name="<script>alert(1)</script>"))
        assert "<script>" not in out.html
        assert "&lt;script&gt;" in out.html

    def test_a_runtime_error_never_quotes_the_value_it_failed_on(self):
        with pytest.raises(TemplateError) as caught:
            rendering.render("Hi", "{{ person.company | truncate: person.country }}",
                             context(country="secret-country-value"))
        assert "secret-country-value" not in caught.value.message
        assert caught.value.message.startswith("Liquid: a tag or filter on line 1")


class TestReviewedAttacks:
    """Templates an attacker's review found to crash, exhaust or slip past the sandbox."""

    def test_mjml_nested_past_the_compilers_stack_is_refused(self):
        source = ("<mjml><mj-body>" + "<mj-wrapper>" * 2000 + "</mj-wrapper>" * 2000
                  + "</mj-body></mjml>")
        error = compiled_error(source, kind="mjml")
        assert "nested more than 100 deep" in error.message

    def test_html_nested_past_the_inliners_stack_is_refused(self):
        assert "nested more than 100 deep" in compiled_error("<div>" * 19000).message

    def test_a_compiler_that_dies_is_a_clear_refusal(self, monkeypatch):
        monkeypatch.setattr(rendering, "MAX_DEPTH", 10**6)  # let the nesting through
        error = compiled_error("<div>" * 19000)
        assert error.message == rendering.TOO_COSTLY

    def test_mjml_that_compiles_to_too_much_html_is_refused(self, monkeypatch):
        monkeypatch.setattr(rendering, "OUTPUT_LIMIT", 20_000)
        section = "<mj-section><mj-column><mj-spacer /></mj-column></mj-section>"
        error = compiled_error(f"<mjml><mj-body>{section * 100}</mj-body></mjml>",
                               kind="mjml")
        assert error.message == ("Compiled, the template would be longer than 20,000 "
                                 "characters.")

    def test_a_filter_chain_without_loops_is_stopped_by_the_clock(self, monkeypatch):
        monkeypatch.setattr(rendering, "RENDER_SECONDS", -1.0)
        error = compiled_error("{{ account.name | upcase }}")
        assert "takes longer than" in error.message

    def test_squaring_a_number_past_the_size_limit_is_refused(self):
        source = "{% assign x = 99999999999 %}" + "{% assign x = x | times: x %}" * 13
        assert "too large" in compiled_error(source).message

    def test_a_replace_that_would_multiply_text_is_refused_before_it_runs(self):
        source = ("{% capture s %}" + "a" * 5000 + "{% endcapture %}"
                  "{{ s | replace: 'a', s }}")
        assert "too large" in compiled_error(source).message

    def test_a_filter_failing_on_a_persons_value_is_a_template_error(self):
        with pytest.raises(TemplateError) as caught:
            rendering.render("Hi", "{{ person.first_name | round }}",
                             context(first_name="1e999"))
        assert caught.value.message.startswith("Liquid: a tag or filter")

    def test_markup_that_breaks_the_text_converter_is_a_template_error(self):
        error = compiled_error('<style>{{ "</" | append: "style><![" }}</style>')
        assert error.field == "source"

    def test_entities_cannot_smuggle_a_merge_field_past_the_check(self):
        error = compiled_error("<p>&#123;&#123; now &#125;&#125;</p>")
        assert error.message.startswith("Unknown merge field now")

    def test_a_table_cannot_move_a_commented_out_field_into_the_email(self):
        html = rendering.compile_template(
            "html", "Hi", "<table>{% comment %}<tr><td>[{{ person.email }}]</td></tr>"
                          "{% endcomment %}</table>")
        assert "[" not in rendering.render("Hi", html, context()).html

    def test_the_servers_clock_is_not_in_the_context(self):
        assert "20" not in rendering.render("Hi", "[{{ now }}{{ today }}]", context()).html

    def test_a_comparison_in_html_survives_compilation(self):
        html = rendering.compile_template(
            "html", "Hi", "<p>{% if person.country > 'A' %}big{% endif %}</p>")
        assert "big" in rendering.render("Hi", html, context(country="GB")).html

    def test_a_loop_over_table_rows_stays_inside_the_table(self):
        html = rendering.compile_template(
            "html", "Hi", "<table>{% for i in (1..3) %}<tr><td>row {{ i }}</td></tr>"
                          "{% endfor %}</table>")
        out = rendering.render("Hi", html, context()).html
        assert out.count("<tr><td>row ") == 3
        assert out.index("<table>") < out.index("row 1")

    def test_control_characters_never_reach_the_subject(self):
        out = rendering.render("Hi {{ person.first_name }}", "<p>x</p>",
                               context(first_name="A\x00B\x1b[31m\r\nBcc: x@y\u2028Z"))
        assert out.subject == "Hi AB[31m Bcc: x@y Z"


class TestSecondReview:
    """What a second attacker's review found after the first fixes."""

    def test_a_branch_the_sample_never_takes_is_still_bounded_in_a_preview(self,
                                                                           monkeypatch):
        monkeypatch.setattr(rendering, "PREVIEW_CPU_SECONDS", 1)
        body = "{% if i == 1 %}{% endif %}" * 400
        compiled = rendering.compile_template(
            "html", "Hi", "<p>{% if unsubscribe_url contains 'real' %}"
                          f"{{% for i in (1..10000) %}}{body}{{% endfor %}}{{% endif %}}x</p>")
        context = rendering.sample_context()
        context["unsubscribe_url"] = "https://real.example/u"
        with pytest.raises(TemplateError) as caught:
            rendering.render_isolated("Hi", compiled, context)
        assert caught.value.message.startswith("Rendering took too long")

    def test_a_huge_range_is_refused_before_a_filter_walks_it(self):
        with pytest.raises(TemplateError) as caught:
            rendering.render("Hi", "{% assign r = (1..20000000) %}{{ r | sort | size }}",
                             context())
        assert "too large" in caught.value.message

    def test_the_date_filter_cannot_read_the_clock(self):
        with pytest.raises(TemplateError):
            rendering.render("Hi", '{{ "now" | date: "%Y" }}', context())

    def test_a_date_format_cannot_pad_a_field_to_any_width(self):
        with pytest.raises(TemplateError):
            rendering.render("Hi", '{{ "2020-01-01" | date: "%500000000Y" }}', context())

    def test_stray_closing_tags_do_not_hide_nesting(self):
        assert "nested more than" in compiled_error("<div></b>" * 200 + "x").message
