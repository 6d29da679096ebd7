#!/bin/sh
# Smoke-test stand-in for the helpers' first-boot script (the config-bucket object
# OONI_ROTATION_SETUP_KEY, `rotation/setup.sh`): the fake DigitalOcean API never boots a droplet,
# so it only has to exist.
echo "oohelperd setup (smoke stand-in)"
