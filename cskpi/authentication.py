from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from cskpi.access import access_for_staff, access_from_grants, user_is_staff
from cskpi.models import ApiToken
from cskpi.selectors import principal_get
from cskpi.services import token_digest


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <token>`; tokens are looked up by their SHA-256 digest."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header:
            return None
        if header[0].lower() != self.keyword.lower().encode():
            scheme = header[0][:20].decode("latin1")
            raise exceptions.AuthenticationFailed(
                f"Unsupported authorization scheme '{scheme}': send 'Authorization: Bearer <token>'."
            )
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("The Authorization header must be 'Bearer <token>'.")
        try:
            token = header[1].decode()
        except UnicodeError as exc:
            raise exceptions.AuthenticationFailed("The token has invalid characters.") from exc
        principal = principal_get(digest=token_digest(token))
        if principal is None or not principal.token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        row = principal.token
        now = timezone.now()
        if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
        # The grants (staff: the departments) came with the token in one query: the caller's access
        # for this request, which request_access would otherwise read again.
        request._cskpi_access = (access_for_staff(principal.departments) if user_is_staff(row.user)
                                 else access_from_grants(principal.grants))
        return row.user, row

    def authenticate_header(self, request):
        return 'Bearer realm="cskpi"'


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "cskpi.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "Token from `manage.py issue_token`."}
