"""Accounts and keys: teams, memberships, exchange accounts, access, encryption, audit."""
