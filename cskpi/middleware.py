"""Response headers every answer gets."""

from django.utils.cache import patch_cache_control, patch_vary_headers


class NoStoreMiddleware:
    """An answer to a request that carried credentials is for that caller alone: no cache keeps it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if "HTTP_AUTHORIZATION" in request.META:
            patch_cache_control(response, no_store=True, private=True)
            patch_vary_headers(response, ["Authorization"])
        return response
