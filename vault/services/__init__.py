"""Use cases. They talk to ports (KeyProvider, Store), never to hvac, grpc or SQL directly."""
