"""Organisational controls kept as data: the security policies (and, to come, the staff
register) with the controls that check them."""
