import pytest


def pytest_addoption(parser):
    try:
        parser.addoption("--colloquy", required=True, help="path to the colloquy binary")
    except ValueError:
        # already added by tests/flight/conftest.py when both folders run in one pytest session
        pass


@pytest.fixture(scope="session")
def colloquy_binary(request):
    return request.config.getoption("--colloquy")
