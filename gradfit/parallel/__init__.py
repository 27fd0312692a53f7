"""Data-parallel training: the communicator interface (serial and MPI) and the watchdog."""
from .comm import MPIComm, SerialComm, choose_comm_kind, get_comm, set_comm
from .watchdog import Watchdog

__all__ = ["MPIComm", "SerialComm", "Watchdog", "choose_comm_kind", "get_comm", "set_comm"]
