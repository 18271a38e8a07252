module libinject.dev/tests/admitfloor

go 1.26.0
