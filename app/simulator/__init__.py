"""A built-in LMS simulator: the platform side of LTI Dynamic Registration, on loopback.

`Simulator(profile=...)` serves one LMS's OpenID configuration, registration endpoint and JWKS;
`Simulator.register(tool_url)` opens a tool's registration URL like an admin's browser and returns a
`SimulationReport`.
"""

from app.simulator.driver import SimulationReport
from app.simulator.profiles import PROFILES, Profile
from app.simulator.records import RegistrationRecord
from app.simulator.server import FAULTS, REMOVE, Simulator

__all__ = [
    "FAULTS",
    "PROFILES",
    "Profile",
    "REMOVE",
    "RegistrationRecord",
    "SimulationReport",
    "Simulator",
]
