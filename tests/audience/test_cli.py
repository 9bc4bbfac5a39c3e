"""``enclave segments list/count/refresh``: counts, not people; clear errors, exit 2."""

from __future__ import annotations

import pytest

from enclave import cli
from enclave.audience import actions
from enclave.audience.models import SegmentMember
from enclave.people.actions import do_update_person


def vips(world):
    do_update_person(world.person, {"tags": ["vip"]}, actor=world.actor("owner"))
    return actions.do_create_segment(world.account, "VIPs", "dynamic",
                                     {"type": "tag", "tag": "vip"}, actor=world.actor("owner"))


@pytest.mark.django_db
class TestSegmentsCli:
    def test_list_prints_ids_kinds_counts_and_names(self, world, capsys):
        segment = vips(world)
        assert cli.main(["segments", "list", "--account", str(world.account.pk)]) == 0
        assert capsys.readouterr().out == f"{segment.pk}\tdynamic\t1\tVIPs\n"

    def test_count_prints_the_live_count(self, world, capsys):
        segment = vips(world)
        assert cli.main(["segments", "count", str(segment.pk)]) == 0
        assert capsys.readouterr().out == "1\n"

    @pytest.mark.parametrize("segment", ["999999", "abc", "9" * 40])
    def test_count_of_an_unknown_segment_is_one_line_and_exit_2(self, segment, capsys):
        assert cli.main(["segments", "count", segment]) == 2
        err = capsys.readouterr().err
        assert err.startswith("enclave: segments: no segment")
        assert err.count("\n") == 1

    def test_refresh_writes_membership_rows(self, world, capsys):
        segment = vips(world)
        assert cli.main(["segments", "refresh"]) == 0
        assert list(SegmentMember.objects.filter(segment=segment)
                    .values_list("person_id", flat=True)) == [world.person.pk]
        assert "refreshed 1 dynamic segment(s)" in capsys.readouterr().err


@pytest.mark.django_db
class TestSegmentsCliActions:
    def test_create_a_dynamic_segment_as_a_member_prints_its_id(self, world, capsys):
        from enclave.audience.models import Segment

        code = cli.main(["segments", "create", "--account", str(world.account.pk),
                         "--member", world.members["user"].email, "--name", "VIPs",
                         "--rules", '{"type": "tag", "tag": "vip"}'])
        assert code == 0
        segment = Segment.objects.get()
        assert capsys.readouterr().out == f"{segment.pk}\n"
        assert (segment.kind, segment.rules["tag"]) == ("dynamic", "vip")

    def test_create_as_a_member_without_segments_manage_is_refused(self, world, capsys):
        from enclave.audience.models import Segment

        code = cli.main(["segments", "create", "--account", str(world.account.pk),
                         "--member", world.members["viewer"].email, "--name", "L",
                         "--static"])
        assert code == 2
        assert capsys.readouterr().err.count("\n") == 1
        assert not Segment.objects.exists()

    def test_create_as_a_member_of_another_account_is_refused(self, world, capsys):
        from enclave.audience.models import Segment

        code = cli.main(["segments", "create", "--account", str(world.account.pk),
                         "--member", world.other_owner.email, "--name", "L", "--static"])
        assert code == 2
        assert not Segment.objects.exists()

    @pytest.mark.parametrize(("rules", "says"), [
        ("{not json", "not valid JSON"),
        ('{"type": "field", "field": "nope", "op": "equals", "value": 1}', "Unknown field"),
    ])
    def test_bad_rules_are_one_line_and_exit_2(self, world, capsys, rules, says):
        code = cli.main(["segments", "create", "--account", str(world.account.pk),
                         "--member", world.members["user"].email, "--name", "X",
                         "--rules", rules])
        err = capsys.readouterr().err
        assert (code, err.count("\n")) == (2, 1)
        assert says in err

    def test_an_unknown_member_is_one_line_and_exit_2(self, world, capsys):
        code = cli.main(["segments", "create", "--account", str(world.account.pk),
                         "--member", "nobody@example.com", "--name", "X", "--static"])
        assert code == 2
        assert capsys.readouterr().err == (
            "enclave: segments: no member with email 'nobody@example.com'\n")

    def test_snapshot_prints_the_new_lists_id(self, world, capsys):
        segment = vips(world)
        assert cli.main(["segments", "snapshot", str(segment.pk), "--member",
                         world.members["user"].email, "--name", "VIPs now"]) == 0
        new_id = int(capsys.readouterr().out)
        assert list(SegmentMember.objects.filter(segment_id=new_id)
                    .values_list("person_id", flat=True)) == [world.person.pk]

    def test_delete_removes_the_segment(self, world, capsys):
        from enclave.audience.models import Segment

        segment = vips(world)
        assert cli.main(["segments", "delete", str(segment.pk), "--member",
                         world.members["user"].email]) == 0
        assert not Segment.objects.exists()

    def test_members_prints_ids_in_pages(self, world, capsys):
        from enclave.people.actions import do_create_person

        owner = world.actor("owner")
        ids = [world.person.pk] + [do_create_person(
            world.account, {"email": f"p{i}@x.example", "tags": ["vip"]}, actor=owner).pk
            for i in range(2)]
        segment = vips(world)
        assert cli.main(["segments", "members", str(segment.pk), "--limit", "2"]) == 0
        first = capsys.readouterr()
        assert first.out.split() == [str(i) for i in ids[:2]]
        assert first.err == f"more: --after {ids[1]}\n"
        assert cli.main(["segments", "members", str(segment.pk), "--after",
                         str(ids[1])]) == 0
        assert capsys.readouterr().out.split() == [str(ids[2])]

    @pytest.mark.parametrize("args", [["--limit", "0"], ["--after", "-1"],
                                      ["--limit", "x"]])
    def test_members_bad_paging_is_one_line_and_exit_2(self, world, capsys, args):
        segment = vips(world)
        assert cli.main(["segments", "members", str(segment.pk), *args]) == 2
        assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.django_db
class TestSuppressionsCli:
    def run(self, world, monkeypatch, command, text, role="user"):
        import io

        monkeypatch.setattr("sys.stdin", io.StringIO(text))
        return cli.main(["suppressions", command, "--account", str(world.account.pk),
                         "--member", world.members[role].email])

    def test_add_reads_addresses_from_stdin(self, world, monkeypatch, capsys):
        from enclave.audience.subscriptions import is_suppressed

        text = "a@example.com\n\nb@example.com\na@example.com\n"
        assert self.run(world, monkeypatch, "add", text) == 0
        assert capsys.readouterr().err == "2 changed, 1 unchanged\n"
        assert is_suppressed(world.account.pk, "b@example.com")

    def test_remove_refused_for_one_line_changes_nothing(self, world, monkeypatch,
                                                         capsys):
        from enclave.audience.subscriptions import is_suppressed
        from enclave.people.actions import do_erase_person
        from tests.people.world import PERSON

        self.run(world, monkeypatch, "add", "a@example.com\n")
        do_erase_person(world.person, actor=world.actor("owner"))
        capsys.readouterr()
        assert self.run(world, monkeypatch, "remove",
                        f"a@example.com\n{PERSON['email']}\n") == 2
        err = capsys.readouterr().err
        assert err.startswith("enclave: suppressions: line 2 of stdin:")
        assert err.count("\n") == 1
        assert PERSON["email"] not in err
        assert is_suppressed(world.account.pk, "a@example.com")

    def test_a_member_without_people_write_is_refused(self, world, monkeypatch, capsys):
        from enclave.audience.models import Suppression

        assert self.run(world, monkeypatch, "add", "a@example.com\n", role="viewer") == 2
        assert capsys.readouterr().err.count("\n") == 1
        assert not Suppression.objects.exists()
