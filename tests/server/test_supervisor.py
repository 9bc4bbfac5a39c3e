"""`enclave serve` (what `make run` runs): serves, stops cleanly on Ctrl-C, keeps data."""

import socket
import ssl
import urllib.request

from enclave.testing.live import run_enclave, stop


def https_status(live, path="/"):
    ctx = ssl.create_default_context(cafile=str(live.ca_file))
    with urllib.request.urlopen(live.https_url + path, context=ctx, timeout=10) as resp:  # noqa: S310
        return resp.status


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class TestServe:
    def test_first_start_prints_one_time_owner_link(self, tmp_path):
        with run_enclave(tmp_path / "var") as live:
            assert live.setup_link().startswith(f"https://localhost:{live.https_port}/app/setup/")

    def test_serves_https_verified_by_local_ca(self, tmp_path):
        with run_enclave(tmp_path / "var") as live:
            assert https_status(live) == 200

    def test_ctrl_c_stops_every_listener_and_exits_zero(self, tmp_path):
        with run_enclave(tmp_path / "var") as live:
            assert stop(live.process) == 0
            assert not port_open(live.https_port)
            assert not port_open(live.http_port)

    def test_restart_keeps_data_and_issues_no_new_link_once_owner_exists(self, tmp_path):
        var = tmp_path / "var"
        with run_enclave(var) as live:
            token = live.setup_link().rsplit("/", 1)[1]
            env = live.env
        import os
        import subprocess
        import sys

        code = ("from enclave.accounts.onboarding import do_create_first_owner as f;"
                f"f({token!r}, 'owner@example.com', 'correct horse battery staple')")
        subprocess.run([sys.executable, "-c", "import django; django.setup();" + code],
                       env={**env, "DJANGO_SETTINGS_MODULE": "enclave.settings",
                            "PATH": os.environ["PATH"]}, check=True)
        with run_enclave(var) as live:
            assert live.setup_link() is None
            assert https_status(live, "/app/login/") == 200


class TestPortsInUse:
    def test_serve_refuses_a_port_another_process_listens_on(self, tmp_path):
        import subprocess
        import sys

        from enclave.testing.live import free_port, server_env

        https_port, http_port = free_port(), free_port()
        with socket.socket() as other:
            other.bind(("127.0.0.1", https_port))
            other.listen()
            result = subprocess.run(
                [sys.executable, "-m", "enclave", "serve"],
                env=server_env(tmp_path / "var", https_port, http_port),
                capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 1
        assert (f"enclave: cannot listen: ENCLAVE_HTTPS_PORT={https_port} already in use; "
                "stop what listens there or choose another port") in result.stderr
        assert "Enclave is running at" not in result.stdout

    def test_ports_in_use_names_only_the_taken_port(self, tmp_path):
        from enclave import config
        from enclave.server.supervisor import ports_in_use
        from enclave.testing.live import free_port

        https_port, http_port = free_port(), free_port()
        cfg = config.load({"ENCLAVE_ENV": "test", "ENCLAVE_VAR_DIR": str(tmp_path / "var"),
                           "ENCLAVE_HTTPS_PORT": str(https_port),
                           "ENCLAVE_HTTP_PORT": str(http_port)})
        with socket.socket() as other:
            other.bind(("127.0.0.1", http_port))
            other.listen()
            assert ports_in_use(cfg) == [f"ENCLAVE_HTTP_PORT={http_port}"]
        assert ports_in_use(cfg) == []


class TestFreePort:
    def test_free_port_never_repeats_in_one_process(self):
        from enclave.testing.live import free_port

        ports = [free_port() for _ in range(50)]
        assert len(set(ports)) == 50

    def test_free_port_is_below_the_ephemeral_range(self):
        from enclave.testing.live import PORT_RANGE, free_port

        assert free_port() in PORT_RANGE
        assert PORT_RANGE.stop <= 32768
