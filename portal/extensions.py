"""Flask extensions, created unbound and initialised by ``create_app``."""

from flask_babel import Babel
from flask_htmx import HTMX
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

from portal import rate_limits  # noqa: F401  (registers the storage database:// with limits)

babel = Babel()
csrf = CSRFProtect()
htmx = HTMX()
limiter = Limiter(key_func=get_remote_address)
login_manager = LoginManager()
