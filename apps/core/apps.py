import gc

from django.apps import AppConfig
from django.conf import settings


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"

    def ready(self) -> None:
        # A container list decodes and builds some 100,000 short-lived objects. With CPython's
        # default first threshold (700 allocations) that runs the cycle collector about 150
        # times per list, scanning survivors each time: a fifth of the list's cost. Nearly all
        # of these objects are freed by reference counting anyway; a higher first threshold
        # only delays collection of real cycles, which are rare here.
        threshold = settings.QUILTWEB_GC_THRESHOLD
        if threshold:
            _, second, third = gc.get_threshold()
            gc.set_threshold(threshold, max(second, 20), third)
