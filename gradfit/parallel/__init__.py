"""Data-parallel training: the communicator interface (serial and MPI)."""
from .comm import SerialComm, get_comm

__all__ = ["SerialComm", "get_comm"]
