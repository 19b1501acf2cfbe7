"""One exception type for everything a user can get wrong, shaped as: what, where, what to do next."""


class ZooError(Exception):
    """An error the user can act on.

    ``what`` says what went wrong, ``where`` names the file, model or URL involved,
    and ``hint`` says what to do next. The CLI prints these three and exits 1
    without a traceback.
    """

    def __init__(self, what: str, *, where: str | None = None, hint: str | None = None):
        self.what, self.where, self.hint = what, where, hint
        super().__init__(self.render())

    def render(self) -> str:
        lines = [self.what]
        if self.where:
            lines.append(f"  where: {self.where}")
        if self.hint:
            lines.append(f"  next: {self.hint}")
        return "\n".join(lines)


class RegistryError(ZooError):
    """registry.yaml (or a plugin's or user's registry file) is malformed."""


class PluginError(ZooError):
    """Two plugins disagree (a name collision) or a plugin broke its contract."""


class UnknownNameError(ZooError, KeyError):
    """A model, dataset, recipe or converter name that nothing registered."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.render()


class IntegrityError(ZooError):
    """A downloaded or local file does not match what the registry pins."""


class UnsafeFileError(ZooError):
    """A pickle file, or a path that escapes its repository."""


def did_you_mean(kind: str, name: str, choices, *, otherwise: str, where: str | None = None) -> UnknownNameError:
    """The error for an unknown ``name``, suggesting the closest of ``choices`` (or ``otherwise``).

    Raise the result: ``raise did_you_mean("dataset", name, table, otherwise="...")``.
    """
    import difflib

    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return UnknownNameError(f"unknown {kind} {name!r}", where=where,
                            hint=f"did you mean {close[0]!r}?" if close else otherwise)
