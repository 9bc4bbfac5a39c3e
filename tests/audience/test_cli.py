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
