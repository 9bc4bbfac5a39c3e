"""Who may do what: the one principal, the permission table, the endpoint registry and
the personal-data registry. Depends only on ``enclave.core``; every app above it asks
here (``authorize``) and nowhere else."""
