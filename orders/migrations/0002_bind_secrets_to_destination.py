"""S21: re-encrypt every stored secret bound to its destination (public key, endpoint, subaccount).

Secrets stored before S21 are ``v1`` tokens, bound to their row only. This migration decrypts each with
the configured keys and encrypts it again as ``v2``, bound to the row *and* to where it may be sent, so
that later changing where a key goes requires its secret. It needs ``QFEXDASH_ENCRYPTION_KEYS`` (or the
local key file) whenever there are ``v1`` rows; a row that cannot be decrypted (a key that is no longer
configured) is left as it is and shows "re-enter it", as it did before. Reversing turns ``v2`` tokens
back into ``v1``.
"""

import base64

from django.db import migrations


def _rows(ExchangeAccount, version):
    return ExchangeAccount.objects.filter(secret_ciphertext__startswith=f"{version}.").order_by("pk")


def bind_to_destination(apps, schema_editor):
    from orders.accounts import encryption

    ExchangeAccount = apps.get_model("orders", "ExchangeAccount")
    rows = list(_rows(ExchangeAccount, encryption.LEGACY_TOKEN_VERSION))
    if not rows:
        return
    encryption.configured_keys()  # EncryptionKeyError, naming the setting, when no key is configured
    for row in rows:
        try:
            plaintext = encryption.decrypt_legacy_secret(row.secret_ciphertext, row.binding)
        except encryption.SecretUnreadable:
            continue  # unreadable before too: the account already says "re-enter it"
        destination = encryption.Destination.of(row)
        token = encryption.encrypt_secret(plaintext, row.binding, destination)
        del plaintext
        ExchangeAccount.objects.filter(pk=row.pk).update(secret_ciphertext=token)


def unbind(apps, schema_editor):
    from orders.accounts import encryption

    ExchangeAccount = apps.get_model("orders", "ExchangeAccount")
    rows = list(_rows(ExchangeAccount, encryption.TOKEN_VERSION))
    if not rows:
        return
    key = encryption.configured_keys()[0]
    for row in rows:
        try:
            plaintext = encryption.decrypt_secret(row.secret_ciphertext, row.binding, encryption.Destination.of(row))
        except encryption.SecretUnreadable:
            continue
        blob = key.encrypt(plaintext.encode("utf-8"), encryption._legacy_associated_data(row.binding))
        del plaintext
        token = f"{encryption.LEGACY_TOKEN_VERSION}.{key.key_id}.{base64.urlsafe_b64encode(blob).decode('ascii')}"
        ExchangeAccount.objects.filter(pk=row.pk).update(secret_ciphertext=token)


class Migration(migrations.Migration):
    dependencies = [("orders", "0001_initial")]

    operations = [migrations.RunPython(bind_to_destination, unbind, elidable=False)]
