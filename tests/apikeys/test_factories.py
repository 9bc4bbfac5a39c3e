"""The test helper that alters a token always returns a different token."""

from tests.apikeys.factories import altered


def test_altered_token_differs_when_it_already_ends_in_the_replacement():
    assert altered("enc_test_abc_a") == "enc_test_abc_b"


def test_altered_token_differs_at_any_index():
    token = "enc_test_abcdef"
    assert all(altered(token, i) != token for i in range(-len(token), len(token)))
