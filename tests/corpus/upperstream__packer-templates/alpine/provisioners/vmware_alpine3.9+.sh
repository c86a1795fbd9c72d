#!/bin/sh
# stub of the project script
