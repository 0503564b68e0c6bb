"""Accounts and keys: teams, memberships, exchange accounts, access, encryption, audit.

The writes are services by entity (HackSoft's ``<entity>_<action>``), each leaving an audit event:

- :mod:`~orders.accounts.exchange_accounts` — add, change, re-key and remove an exchange account;
- :mod:`~orders.accounts.teams` — teams and memberships, and the rule that a team keeps an admin;
- :mod:`~orders.accounts.verify` — check a key with QFEX once and record the outcome;
- :mod:`~orders.accounts.rotation` — re-encrypt every stored secret with the first key;
- :mod:`~orders.accounts.sign_ins` — a person's signed-in browsers ("Your sessions"), ending them, and removing
  second-factor devices (S35);
- :mod:`~orders.accounts.audit` — the audit trail's writes (:mod:`~orders.accounts.audit_text` reads an event
  in words, :mod:`~orders.accounts.audit_filters` filters the page).

Beside them: :mod:`~orders.accounts.rules` (every field rule and its message, for forms, services and
commands alike), :mod:`~orders.accounts.access` (who may see and manage what), :mod:`~orders.accounts.display`
(an account's key status in words), :mod:`~orders.accounts.encryption` (secrets at rest),
:mod:`~orders.accounts.endpoints` (where a key may be sent), :mod:`~orders.accounts.preferences` (each
person's display choices) and :mod:`~orders.accounts.people` (the ``User`` and ``Visitor`` types).
"""
