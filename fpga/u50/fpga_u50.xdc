# Alveo U50 (xcu50-fsvh2104-2-e) constraints for fpga_u50: PCIe Gen3 x16 on GTY quads 224-227.
# Pin assignments from the U50 board documentation (UG1371) and board files.

# Configuration: 1.8 V bank 0, quad SPI flash.
set_property CFGBVS GND                             [current_design]
set_property CONFIG_VOLTAGE 1.8                     [current_design]
set_property CONFIG_MODE SPIx4                      [current_design]
set_property BITSTREAM.CONFIG.SPI_BUSWIDTH 4        [current_design]
set_property BITSTREAM.CONFIG.CONFIGRATE 85.0       [current_design]
set_property BITSTREAM.CONFIG.SPI_32BIT_ADDR YES    [current_design]
set_property BITSTREAM.CONFIG.SPI_FALL_EDGE YES     [current_design]
set_property BITSTREAM.CONFIG.EXTMASTERCCLK_EN DISABLE [current_design]
set_property BITSTREAM.CONFIG.UNUSEDPIN PULLUP      [current_design]
set_property BITSTREAM.GENERAL.COMPRESS TRUE        [current_design]
set_operating_conditions -design_power_budget 63

# PCIe lanes: {lane rx_p rx_n tx_p tx_n}, lane 0 on GTY quad 227 channel 3.
foreach {lane rxp rxn txp txn} {
     0 AL2 AL1 Y5  Y4     1 AM4 AM3 AA7 AA6    2 AK4 AK3 AB5 AB4    3 AN2 AN1 AC7 AC6
     4 AP4 AP3 AD5 AD4    5 AR2 AR1 AF5 AF4    6 AT4 AT3 AE7 AE6    7 AU2 AU1 AH5 AH4
     8 AV4 AV3 AG7 AG6    9 AW2 AW1 AJ7 AJ6   10 BA2 BA1 AL7 AL6   11 BC2 BC1 AM9 AM8
    12 AY4 AY3 AN7 AN6   13 BB4 BB3 AP9 AP8   14 BD4 BD3 AR7 AR6   15 BE6 BE5 AT9 AT8
} {
    set_property PACKAGE_PIN $rxp [get_ports "pcie_rx_p[$lane]"]
    set_property PACKAGE_PIN $rxn [get_ports "pcie_rx_n[$lane]"]
    set_property PACKAGE_PIN $txp [get_ports "pcie_tx_p[$lane]"]
    set_property PACKAGE_PIN $txn [get_ports "pcie_tx_n[$lane]"]
}

# 100 MHz PCIe reference clock (MGTREFCLK0 of quad 225, the x16 reference).
set_property PACKAGE_PIN AF9 [get_ports pcie_refclk_p]
set_property PACKAGE_PIN AF8 [get_ports pcie_refclk_n]
create_clock -period 10.000 -name pcie_refclk [get_ports pcie_refclk_p]

# PERST#: asynchronous, active low.
set_property -dict {PACKAGE_PIN AW27 IOSTANDARD LVCMOS18 PULLUP true} [get_ports pcie_reset_n]
set_false_path -from [get_ports pcie_reset_n]
set_input_delay 0 [get_ports pcie_reset_n]

# HBM catastrophic-temperature output to the board controller, held low.
set_property -dict {PACKAGE_PIN J18 IOSTANDARD LVCMOS18} [get_ports hbm_cattrip]
set_false_path -to [get_ports hbm_cattrip]
set_output_delay 0 [get_ports hbm_cattrip]
