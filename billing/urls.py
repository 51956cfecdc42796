from django.urls import path

from billing import codes_views, stripe_views, views

app_name = "billing"

urlpatterns = [
    path("", views.billing_page, name="page"),
    path("low-balance-alert", views.low_balance_alert, name="low_balance_alert"),
    path("redeem", codes_views.redeem, name="redeem"),
    # Stripe Checkout (billing/stripe_views.py): "Buy", the pages Stripe sends
    # the customer back to, and Stripe's webhook (the only CSRF-exempt POST).
    path("buy/", stripe_views.checkout_buy, name="buy"),
    path("checkout/success/", stripe_views.checkout_success, name="checkout_success"),
    path("checkout/cancel/", stripe_views.checkout_cancel, name="checkout_cancel"),
    path("stripe/webhook", stripe_views.stripe_webhook, name="stripe_webhook"),
]
