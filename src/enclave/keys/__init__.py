"""The keyring: envelope encryption, keyed MACs, encrypted model fields and rotation.

Public API: :mod:`enclave.keys.api` (``encrypt``/``decrypt``/``mac``/``verify_mac``),
:mod:`enclave.keys.fields` (``EncryptedTextField``/``EncryptedBinaryField``) and the
errors in :mod:`enclave.keys.errors`. See docs/keys.md.
"""
