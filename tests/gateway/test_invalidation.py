"""Changes made by another process reach a running server through Redis.

Changes made in this process clear the cache directly (see tests/keys and
test_config); these tests change rows without Django signals, the way another
host's admin would look from here, and publish only the Redis message.
"""

from gateway.invalidation import CATALOGUE, CHANNEL
from gateway.models import CatalogModel
from keys.models import ApiKey
from purebridge.redis import sync_client
from tests.helpers import chat_body, post_chat, wait_for


def test_key_change_published_on_redis_reaches_the_running_server(http, make_key, make_model):
    make_model()
    key, secret = make_key()
    assert post_chat(http, secret, chat_body()).status_code == 200  # cached now
    ApiKey.objects.filter(pk=key.pk).update(is_active=False)  # no signal

    sync_client().publish(CHANNEL, f"key:{key.lookup}")

    assert wait_for(lambda: post_chat(http, secret, chat_body()).status_code == 401, timeout=3)


def test_catalogue_change_published_on_redis_reaches_the_running_server(http, api_key, make_model):
    make_model()
    assert post_chat(http, api_key, chat_body()).status_code == 200  # cached now
    CatalogModel.objects.filter(public_id="test-model").update(enabled=False)  # no signal

    sync_client().publish(CHANNEL, CATALOGUE)

    assert wait_for(lambda: post_chat(http, api_key, chat_body()).status_code == 404, timeout=3)
