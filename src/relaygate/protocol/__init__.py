"""Sans-I/O protocol cores: pure data in, data out; shared by servers and SDKs."""

__all__: list[str] = []
