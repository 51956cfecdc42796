"""GET /v1/models and GET /v1/models/{id}."""

from gateway.models import CatalogModel


def get(http, path: str, key: str):
    return http.get(path, headers={"Authorization": f"Bearer {key}"})


def test_model_list_has_the_openai_shape(http, api_key, make_model):
    make_model("codex-auto-review")

    body = get(http, "/v1/models", api_key).json()

    assert body["object"] == "list"
    [model] = body["data"]
    assert set(model) == {"id", "object", "created", "owned_by"}
    assert model["id"] == "codex-auto-review"
    assert model["object"] == "model"
    assert isinstance(model["created"], int)


def test_model_list_is_sorted_by_id(http, api_key, make_model):
    for public_id in ("gpt-5.5", "codex-auto-review", "gpt-5.4-mini"):
        make_model(public_id)

    body = get(http, "/v1/models", api_key).json()

    assert [m["id"] for m in body["data"]] == ["codex-auto-review", "gpt-5.4-mini", "gpt-5.5"]


def test_model_list_leaves_out_disabled_models(http, api_key, make_model):
    make_model("on")
    off = make_model("off")
    off.enabled = False
    off.save()

    body = get(http, "/v1/models", api_key).json()

    assert [m["id"] for m in body["data"]] == ["on"]


def test_model_list_is_empty_without_models(http, api_key):
    body = get(http, "/v1/models", api_key).json()

    assert body == {"object": "list", "data": []}


def test_model_list_needs_a_key(http, make_model):
    make_model()

    response = http.get("/v1/models")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_model_list_never_shows_upstream_names(http, api_key, make_model):
    make_model("public-name", "secret-upstream-name")

    response = get(http, "/v1/models", api_key)

    assert "secret-upstream-name" not in response.text


def test_one_model_can_be_retrieved(http, api_key, make_model):
    make_model("gpt-5.4-mini")

    response = get(http, "/v1/models/gpt-5.4-mini", api_key)

    assert response.status_code == 200
    assert response.json()["id"] == "gpt-5.4-mini"
    assert response.json()["object"] == "model"


def test_unknown_model_cannot_be_retrieved(http, api_key, make_model):
    make_model()

    response = get(http, "/v1/models/nope", api_key)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"


def test_model_the_key_may_not_use_cannot_be_retrieved(http, make_key, make_model):
    make_model("forbidden")
    _, secret = make_key(allowed_models=["other"])

    response = get(http, "/v1/models/forbidden", secret)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"


def test_model_owner_is_shown(http, api_key):
    CatalogModel.objects.create(public_id="owned", owned_by="purebridge")

    body = get(http, "/v1/models/owned", api_key).json()

    assert body["owned_by"] == "purebridge"
