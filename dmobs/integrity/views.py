"""The published public keys of the sealer: ``/integrity/keys.json`` and
``/integrity/public-key.pem``. Public on purpose: anyone holding an export and
the digests checks them against these keys (and should pin them elsewhere too:
a key read from the server being verified proves less than one kept apart)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from dmobs.integrity import keys as keymod
from dmobs.integrity.service import published_keys


@require_GET
def keys_json(request: HttpRequest) -> HttpResponse:
    return JsonResponse(published_keys(), json_dumps_params={"indent": 2})


@require_GET
def public_key_pem(request: HttpRequest) -> HttpResponse:
    try:
        keys = keymod.trusted_public_keys()
    except keymod.KeyProblem:
        return HttpResponse(
            "No audit signing key is configured.\n", status=404, content_type="text/plain"
        )
    body = "".join(keymod.public_pem(key) for key in keys)
    return HttpResponse(body, content_type="application/x-pem-file")
