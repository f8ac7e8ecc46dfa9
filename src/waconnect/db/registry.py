"""Imports every capability's models so that ``Base.metadata`` knows all tables (Alembic, tests)."""

from waconnect.campaigns import models as _campaigns  # noqa: F401
from waconnect.dashboard import models as _dashboard  # noqa: F401
from waconnect.db.base import Base
from waconnect.journeys import models as _journeys  # noqa: F401
from waconnect.messaging import models as _messaging  # noqa: F401
from waconnect.profiles import models as _profiles  # noqa: F401
from waconnect.providers import models as _providers  # noqa: F401
from waconnect.templates import models as _templates  # noqa: F401
from waconnect.workspaces import models as _workspaces  # noqa: F401

metadata = Base.metadata
