"""The one NinjaAPI: authentication, error format, versioning. Each app's router is mounted here."""

from ninja.errors import ValidationError, ValidationErrorContext
from ninja.operation import Operation
from ninja.router import BoundRouter

from accounts.api import router as accounts_router
from api import errors
from api.auth import default_auth
from api.health import router as health_router
from api.openapi import DocumentedNinjaAPI
from api.params import refuse_unknown_query_parameters
from api.parser import JsonOnlyParser
from api.renderers import OrjsonRenderer
from audit.api import router as audit_router
from maps.api import router as maps_router
from neighborhoods.api import router as neighborhoods_router
from outreach.api import router as outreach_router
from reports.api import router as reports_router
from reports.exports_api import router as exports_router
from visits.api import router as visits_router
from visits.photos.api import router as photos_router
from visits.sync.api import router as sync_router

# Operation ids are part of the contract with generated clients (their function names). ninja
# derives them from the handler's module, so a module that moved keeps the id of where it was.
MOVED_MODULES = {
    "visits.sync.api": "visits.sync_api",
    "visits.sync.conflicts_api": "visits.conflicts_api",
    "visits.photos.api": "visits.photo_api",
}


class TsunaguAPI(DocumentedNinjaAPI):
    """Every operation refuses query parameters it does not declare (api.params), and validation
    errors name what the client sent (api.errors.client_errors), not ninja's argument names."""

    def get_openapi_operation_id(self, operation: Operation) -> str:
        module = operation.view_func.__module__
        return f"{MOVED_MODULES.get(module, module)}_{operation.view_func.__name__}".replace(".", "_")

    def _get_bound_routers(self) -> list[BoundRouter]:
        bound_routers = super()._get_bound_routers()
        refuse_unknown_query_parameters(bound_routers)
        return bound_routers

    def validation_error_from_error_contexts(self, error_contexts: list[ValidationErrorContext]) -> ValidationError:
        return ValidationError(errors.client_errors(error_contexts))

# An ASCII title: client generators derive package names from it.
api = TsunaguAPI(
    title="tsunagu API",
    version="1",
    description=(
        "つなぐ (tsunagu): backend for municipal outreach (重層的支援体制整備事業): 自治会 and households, visit surveys, "
        "concerns and continuous outreach. Authenticate with a device token from POST /auth/token."
    ),
    urls_namespace="api-v1",
    auth=default_auth,
    docs_url="/docs",
    openapi_url="/openapi.json",
    parser=JsonOnlyParser(),
    renderer=OrjsonRenderer(),
)
errors.install(api)

# Maps first: tiles are the most frequent requests, and Django tries the URL patterns in order.
api.add_router("/maps/", maps_router)
api.add_router("/", health_router)
api.add_router("/", accounts_router)
api.add_router("/audit/", audit_router)
api.add_router("/reports/", reports_router)
api.add_router("/reports/", "reports.corporations_api.router")  # per corporation
api.add_router("/", "outreach.meetings_api.router")  # /case-meetings
api.add_router("/exports", exports_router)  # POST/GET /exports, no trailing slash
# Before the households router: its /households/{household_id} would take "duplicates" or
# "unplaced" for an id.
api.add_router("/", "addresses.api.router")  # households without a point: list, place by hand
api.add_router("/", "neighborhoods.duplicates_api.router")  # possible duplicate households, merge
api.add_router("/", neighborhoods_router)
api.add_router("/", outreach_router)
api.add_router("/", visits_router)
api.add_router("/", "visits.sync.conflicts_api.router")  # 編集の競合: /conflicts
api.add_router("/sync/photos/", photos_router)
api.add_router("/sync/", sync_router)
