"""Project templates and generators: ``relaygate new`` and ``relaygate gen channel|resource|migration``."""

from relaygate.scaffold.files import ScaffoldError
from relaygate.scaffold.generators import gen_channel, gen_migration, gen_resource
from relaygate.scaffold.names import TYPES
from relaygate.scaffold.project import Project, find_project, new_project

__all__ = [
    "TYPES",
    "Project",
    "ScaffoldError",
    "find_project",
    "gen_channel",
    "gen_migration",
    "gen_resource",
    "new_project",
]
