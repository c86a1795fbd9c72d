#!/bin/bash
# stub: the corpus keeps only what `factory validate` reads
