"""``enclave keys …``: status, rotate, reencrypt, rotate-kek, retire. Thin: parse, call an
action, print. Failures are one line on stderr and a non-zero exit."""

from __future__ import annotations

import argparse
import sys

from enclave.keys.errors import KekConfigError, KeyringError


def add_keys_parser(sub) -> argparse.ArgumentParser:
    keys = sub.add_parser("keys", help="keyring: data keys, KEK, rotation, re-encryption")
    cmds = keys.add_subparsers(dest="keys_command", required=True)
    p = cmds.add_parser("status", help="show data keys, KEK, key ages and pending re-encryption")
    p.set_defaults(keys_func=status)
    p = cmds.add_parser("rotate", help="create a new primary data key version")
    p.add_argument("purpose", nargs="?", help="fields, logs, backups or tokens (default: all)")
    p.set_defaults(keys_func=rotate)
    p = cmds.add_parser("reencrypt", help="re-encrypt stored secrets under the primary keys "
                        "(online, in batches, resumable)")
    p.add_argument("--batch-size", type=_positive, default=500, metavar="N")
    p.set_defaults(keys_func=reencrypt)
    p = cmds.add_parser("rotate-kek", help="new key-encryption key; rewrap every data key")
    p.set_defaults(keys_func=rotate_kek)
    p = cmds.add_parser("retire", help="destroy a data key version nothing uses any more")
    p.add_argument("purpose")
    p.add_argument("version", type=_positive)
    p.set_defaults(keys_func=retire)
    return keys


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def run(args: argparse.Namespace) -> int:
    try:
        return args.keys_func(args)
    except KekConfigError:
        raise  # a configuration error: the top-level CLI prints it and exits 2
    except KeyringError as exc:
        print(f"enclave: keys: {exc}", file=sys.stderr)
        return 1


def status(args: argparse.Namespace) -> int:
    from django.conf import settings

    from enclave.keys import status as st
    from enclave.keys.reencrypt import pending_counts

    print(f"KEK provider: {st.provider_line()}")
    kek = st.current_kek_record()
    print(f"current KEK:  {kek.kek_id if kek else '(none)'}"
          + (f" since {kek.created_at:%Y-%m-%d}" if kek else ""))
    print(f"max key age:  {settings.CONFIG.key_max_age_days} days\n")
    print(f"{'purpose':<8} {'version':>7} {'state':<8} {'age (days)':>10} {'values':>7}  kek")
    for line in st.key_lines():
        refs = "-" if line.references is None else str(line.references)
        print(f"{line.purpose:<8} {line.version:>7} {line.state:<8} {line.age_days:>10} "
              f"{refs:>7}  {line.kek_id}")
    pending = {k: v for k, v in pending_counts().items() if v}
    print("\npending re-encryption: " + (", ".join(f"{k} {v}" for k, v in pending.items())
                                         if pending else "none"))
    late = st.over_age(settings.CONFIG)
    if late:
        print("over age (run `enclave keys rotate`): " + "; ".join(late))
    from enclave.core.controls import FAIL, Probe
    from enclave.keys.controls import check_secrets_dir

    outcome = check_secrets_dir(Probe.from_settings())
    if outcome.status == FAIL:
        print(f"secrets directory: {outcome.evidence}")
    return 0


def rotate(args: argparse.Namespace) -> int:
    from enclave.keys.actions import do_rotate_data_key, refuse_unknown_purpose

    for purpose in refuse_unknown_purpose(args.purpose):
        row = do_rotate_data_key(purpose, actor=None, reason="operator (cli)")
        print(f"{purpose}: new primary key v{row.version}")
    print("run `enclave keys reencrypt` to move stored secrets to the new keys")
    return 0


class ProgressBar:
    """A one-line progress bar on stderr (a plain line per update when not a terminal)."""

    WIDTH = 30

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()

    def __call__(self, done: int, total: int, where: str) -> None:
        fraction = 1.0 if total == 0 else min(done / total, 1.0)
        filled = int(fraction * self.WIDTH)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        text = f"[{bar}] {fraction:4.0%} {done}/{total} {where}"
        self.stream.write(f"\r{text}\x1b[K" if self.tty else text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def reencrypt(args: argparse.Namespace) -> int:
    from enclave.keys.reencrypt import do_reencrypt_values

    bar = ProgressBar()
    try:
        report = do_reencrypt_values(actor=None, batch_size=args.batch_size, progress=bar)
    finally:
        bar.close()
    print(("resumed" if report.resumed else "started") + f" run {report.run_id}: "
          f"re-encrypted {report.reencrypted} value(s), scanned {report.scanned}")
    if report.ok:
        print("verified: every value decrypts and is under its primary key")
        return 0
    for failure in report.failures:
        print(f"enclave: keys: cannot decrypt {failure}", file=sys.stderr)
    for label, count in report.remaining.items():
        print(f"enclave: keys: {count} value(s) in {label} still under an older key",
              file=sys.stderr)
    return 1


def rotate_kek(args: argparse.Namespace) -> int:
    from enclave.keys.actions import do_rotate_kek

    kek_id = do_rotate_kek(actor=None)
    print(f"KEK rotated: data keys are now wrapped by {kek_id}")
    return 0


def retire(args: argparse.Namespace) -> int:
    from enclave.keys.actions import do_retire_key_version

    do_retire_key_version(args.purpose, args.version, actor=None)
    print(f"{args.purpose} key v{args.version} retired (its key material is destroyed)")
    return 0
