"""A loopback-only Kubernetes API server stand-in that the real kubectl port-forwards through.

``Simulator(world)`` serves discovery, objects, list/watch and ``pods/NAME/portforward`` (SPDY/3.1
and the WebSocket tunnel) on 127.0.0.1, with a real TCP backend per container port and fault
methods for tests and the demo. Depends on nothing else in kportforward.
"""

from kportforward.sim.control import SimulatorClient
from kportforward.sim.server import RequestRecord, Simulator
from kportforward.sim.world import ContainerPort, Pod, ServicePort, World, WorldError
from kportforward.sim.worlds import demo_world, generated_world

__all__ = [
    "ContainerPort",
    "Pod",
    "RequestRecord",
    "ServicePort",
    "Simulator",
    "SimulatorClient",
    "World",
    "WorldError",
    "demo_world",
    "generated_world",
]
