"""Import every model module so Base.metadata is complete (alembic, tests)."""

from core.jobs import models as _jobs  # noqa: F401
from core.surfaces import models as _surfaces  # noqa: F401
from core.tenancy import models as _tenancy  # noqa: F401
from core.tenancy import imap_models as _imap  # noqa: F401
from core.tickets import models as _tickets  # noqa: F401
from core.webhooks import models as _webhooks  # noqa: F401
from core.db.base import Base

metadata = Base.metadata
