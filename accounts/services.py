from __future__ import annotations

from django.db import transaction

from accounts.models import Account, User


@transaction.atomic
def account_get_or_create_for_email(*, email: str) -> tuple[Account, bool]:
    """The account of the user with this email, creating both if needed."""
    email = email.strip().lower()
    user = User.objects.select_related("account").filter(email=email).first()
    if user is not None:
        return user.account, False
    user = User.objects.create_user(email=email)  # unusable password until reset
    return user.account, True
