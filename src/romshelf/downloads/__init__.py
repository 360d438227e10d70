"""downloads"""
