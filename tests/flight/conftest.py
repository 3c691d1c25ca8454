import pytest


def pytest_addoption(parser):
    parser.addoption("--colloquy", required=True, help="path to the colloquy binary")


@pytest.fixture(scope="session")
def colloquy_binary(request):
    return request.config.getoption("--colloquy")
