"""Placeholder; replaced by the dependency-audit implementation."""


def add_audit_arguments(parser) -> None:
    parser.add_argument("--advisory-db")
    parser.add_argument("--requirements", default="requirements/base.txt")


def deps_audit(args) -> int:
    print("enclave: deps audit is not implemented yet")
    return 2
