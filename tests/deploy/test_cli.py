"""`enclave deploy`: one clear line and a non-zero exit on bad input, never a traceback."""

from __future__ import annotations

from enclave.cli import main
from enclave.deploy import k8s, tiermap


class TestDeployCheck:
    def test_valid_map_lists_its_flows(self, capsys):
        assert main(["deploy", "check"]) == 0
        out = capsys.readouterr().out
        assert "valid — 7 services, 9 flows" in out
        assert "nginx (edge) → gunicorn (app): 8000" in out

    def test_bad_map_is_refused_in_one_line(self, tmp_path, capsys):
        bad = tmp_path / "tiers.toml"
        bad.write_text(tiermap.DEFAULT_MAP.read_text() + '\n[[flow]]\nfrom = "nginx"\n'
                       'to = "postgres"\n')
        assert main(["deploy", "check", "--map", str(bad)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert err.startswith("enclave: tier map refused: ")
        assert "opens the data store 'postgres' to the edge tier" in err


class TestDeployLocal:
    def test_matrix_without_tiers_says_so(self, tmp_path, capsys):
        assert main(["deploy", "local", "matrix", "--state-dir", str(tmp_path)]) == 2
        assert "no local tiers are up" in capsys.readouterr().err

    def test_down_without_tiers_removes_nothing(self, tmp_path, capsys):
        assert main(["deploy", "local", "down", "--state-dir", str(tmp_path)]) == 1
        assert "no local tiers are up" in capsys.readouterr().err

    def test_bad_map_is_refused_before_anything_is_created(self, tmp_path, capsys):
        bad = tmp_path / "tiers.toml"
        bad.write_text(tiermap.DEFAULT_MAP.read_text().replace('to = "gunicorn"',
                                                               'to = "memcached"'))
        code = main(["deploy", "local", "up", "--map", str(bad), "--state-dir",
                     str(tmp_path / "state")])
        assert code == 2
        assert "unknown service 'memcached'" in capsys.readouterr().err
        assert not (tmp_path / "state").exists()


class TestDeployRender:
    def test_render_k8s_writes_the_generated_manifests(self, tmp_path, capsys):
        assert main(["deploy", "render", "k8s", "--out", str(tmp_path)]) == 0
        for name, text in k8s.manifests(tiermap.load()).items():
            assert (tmp_path / name).read_text() == text
