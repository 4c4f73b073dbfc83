"""The engine labels QuiltWeb writes on what it makes (docs/architecture.md, "Processes").

They live at the bottom so that any app can read another app's objects off the engine (the
images page recognises a snapshot's image, every listing filters on the instance) without
importing the app that writes them.
"""

LABEL_MANAGED = "io.quiltweb.managed"
LABEL_TENANT = "io.quiltweb.tenant"
LABEL_INSTANCE = "io.quiltweb.instance"
LABEL_NAME = "io.quiltweb.name"  # the name at creation; the Docker name is the truth after renames
LABEL_SNAPSHOT = "io.quiltweb.snapshot"  # on a snapshot's image: the snapshot id
# On a function's pool containers (contract 2.13): the function id, its name and the version.
LABEL_FUNCTION = "io.quiltweb.function"
LABEL_FUNCTION_NAME = "io.quiltweb.function.name"
LABEL_FUNCTION_VERSION = "io.quiltweb.function.version"
